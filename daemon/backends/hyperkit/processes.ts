// The two processes of a hyperkit VM (hyperkit and vpnkit), each either a child of this daemon
// or adopted from an earlier one, behind one small interface: when it ended, and signalling it
// only while it is still the process that was recorded (a pid alone can be reused).
import type { ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSameProcess, readProcessIdentity, type ProcessIdentity } from '../../process/identity.js';
import { settlesWithin, signalRecorded } from '../common/child-process.js';
import type { ProcessEnd, Spawned } from '../common/spawn.js';

/** What a VmRecord keeps of a process, to recognise it later. */
export interface ProcessRecord {
  pid: number;
  executable: string;
  argv: string[];
  processStartTime: string;
}

export interface Proc {
  readonly name: 'hyperkit' | 'vpnkit';
  readonly record: ProcessRecord;
  readonly child: ChildProcess | null;
  /** Settles once when the process is gone; never rejects. An adopted one ends with code null. */
  readonly ended: Promise<ProcessEnd>;
  /** False when it is already gone (or no longer the recorded process). */
  signal(sig: NodeJS.Signals): Promise<boolean>;
  /** Stops watching an adopted process (the daemon is leaving it to the next one). */
  forget(): void;
}

export function toProcessRecord(pid: number, identity: ProcessIdentity): ProcessRecord {
  return { pid, executable: identity.executable, argv: identity.argv, processStartTime: identity.startTime };
}

export function childProc(name: Proc['name'], spawned: Spawned, record: ProcessRecord): Proc {
  const { child } = spawned;
  const ended = spawned.exit.then(({ code, signal }) => ({ code, signal }));
  return {
    name,
    record,
    child,
    ended,
    async signal(sig) {
      return child.exitCode === null && child.signalCode === null && child.kill(sig);
    },
    forget() {
      child.unref();
    },
  };
}

/** A process that is not our child: watched by polling who holds its pid. */
export function adoptedProc(name: Proc['name'], record: ProcessRecord): Proc {
  let forgotten = false;
  const ended = (async (): Promise<ProcessEnd> => {
    let delay = 100;
    for (;;) {
      if (forgotten) return new Promise<never>(() => {});
      const identity = await readProcessIdentity(record.pid).catch(() => null);
      if (!isSameProcess(record, identity)) return { code: null, signal: null };
      await sleep(delay);
      delay = Math.min(delay * 2, 1000);
    }
  })();
  return {
    name,
    record,
    child: null,
    ended,
    signal(sig) {
      return signalRecorded(record, sig);
    },
    forget() {
      forgotten = true;
    },
  };
}

/** SIGTERM, up to `graceMs` for it to end, then SIGKILL. Resolves once it is gone. */
export async function terminate(p: Proc, graceMs: number): Promise<ProcessEnd> {
  if (graceMs > 0 && (await p.signal('SIGTERM')) && (await settlesWithin(p.ended, graceMs))) return p.ended;
  await p.signal('SIGKILL');
  return p.ended;
}

/** A ProcessRecord read back from a VM record's JSON, or null when it is not one. */
export function parseProcessRecord(v: unknown): ProcessRecord | null {
  const r = v as Partial<ProcessRecord> | null | undefined;
  if (!r || typeof r !== 'object') return null;
  if (
    !Number.isInteger(r.pid) ||
    typeof r.executable !== 'string' ||
    !Array.isArray(r.argv) ||
    typeof r.processStartTime !== 'string'
  )
    return null;
  return {
    pid: r.pid!,
    executable: r.executable,
    argv: r.argv.map(String),
    processStartTime: r.processStartTime,
  };
}

export async function isSocket(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isSocket(),
    () => false,
  );
}
