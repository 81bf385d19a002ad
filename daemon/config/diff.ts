// Which config changes need a new VM and which the daemon applies to the running one.
import { isDeepStrictEqual } from 'node:util';
import type { DaemonConfig } from './schema.js';

export interface ConfigDiff {
  /** A controlled restart of the VM is needed for the new config to take effect. */
  restart: boolean;
  /** Changed keys that need a new VM (dotted paths, `image.kernel`). */
  keys: string[];
  /** Changed keys applied without touching the VM (restart policy, probe, registration, gc). */
  live: string[];
}

/**
 * How a change to each top-level key takes effect. A key missing here would be treated as
 * needing a restart, the safe side; a test checks every schema key is listed.
 */
export const KEY_EFFECT: Record<keyof DaemonConfig, 'restart' | 'live'> = {
  backend: 'restart',
  accel: 'restart',
  arch: 'restart',
  cpus: 'restart',
  memoryMiB: 'restart',
  diskGiB: 'restart',
  // Read at each start: the running VM keeps its store; the next boot gets a fresh one.
  ephemeral: 'live',
  guestAslr: 'restart',
  sshPort: 'restart',
  // The SSH forward moves between QEMU (always) and the daemon's endpoint (on-demand).
  mode: 'restart',
  onDemand: 'live',
  image: 'restart',
  // Used by the probe and the machines-file registration, not by the VM itself.
  sshUser: 'live',
  systems: 'live',
  supportedFeatures: 'live',
  maxJobs: 'live',
  speedFactor: 'live',
  restart: 'live',
  probe: 'live',
  stopGraceMs: 'live',
  onSigterm: 'live',
  gc: 'live',
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

// Dotted paths of the leaves that differ; lists compare whole.
function changedPaths(a: unknown, b: unknown, prefix: string, out: string[]): void {
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) changedPaths(a[k], b[k], prefix === '' ? k : `${prefix}.${k}`, out);
    return;
  }
  if (!isDeepStrictEqual(a, b)) out.push(prefix);
}

export function configChangeNeedsRestart(previous: DaemonConfig, next: DaemonConfig): ConfigDiff {
  const changed: string[] = [];
  changedPaths(previous, next, '', changed);
  const keys: string[] = [];
  const live: string[] = [];
  for (const p of changed) {
    const top = p.split('.')[0] as keyof DaemonConfig;
    (KEY_EFFECT[top] === 'live' ? live : keys).push(p);
  }
  return { restart: keys.length > 0, keys, live };
}
