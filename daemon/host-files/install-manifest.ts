// The record of what install added, kept in the state directory, so uninstall removes exactly
// that: files and folders it created, blocks it added to files it did not own, and files it
// changed (with their earlier content, restored when nobody changed them since).
import { createHash } from 'node:crypto';
import type { InstallPlatform, InstallScope, ServiceLayout, ServiceUser } from './install-layout.js';

export const MANIFEST_VERSION = 1;

export interface ManifestBlock {
  file: string;
  name: string;
  /** The file did not exist before install: once the block is gone and nothing else is left, it goes too. */
  fileCreated: boolean;
}

export interface ManifestModified {
  file: string;
  /** The content before install changed it. */
  original: string;
  /** sha256 of what install wrote: the original comes back only if the file still has exactly that. */
  writtenSha256: string;
}

export interface InstallManifest {
  version: typeof MANIFEST_VERSION;
  scope: InstallScope;
  platform: InstallPlatform;
  root: string | null;
  alias: string;
  user: ServiceUser;
  service: ServiceLayout;
  paths: {
    stateDir: string;
    configPath: string;
    socketPath: string;
    keysDir: string;
    knownHostsFile: string;
    machinesFile: string;
    sshDropIn: string;
  };
  /** In creation order, parents first. */
  createdDirs: string[];
  createdFiles: string[];
  blocks: ManifestBlock[];
  modified: ManifestModified[];
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export function renderManifest(m: InstallManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** Parses a manifest; anything that is not one we wrote is an error naming the file. */
export function parseManifest(text: string, source: string): InstallManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(
      `${source} is not valid JSON (${(err as Error).message}); uninstall needs it to know what install added`,
    );
  }
  const m = value as Partial<InstallManifest>;
  if (typeof m !== 'object' || m === null || m.version !== MANIFEST_VERSION) {
    throw new Error(`${source} is not a linuxkit-nix install manifest of version ${MANIFEST_VERSION}`);
  }
  for (const key of ['createdDirs', 'createdFiles', 'blocks', 'modified'] as const) {
    if (!Array.isArray(m[key])) throw new Error(`${source}: ${key} must be a list`);
  }
  if (
    typeof m.paths !== 'object' ||
    m.paths === null ||
    typeof m.service !== 'object' ||
    m.service === null
  ) {
    throw new Error(`${source}: paths and service must be objects`);
  }
  return m as InstallManifest;
}

/**
 * What this run adds to what earlier installs recorded. Earlier facts win: a file the first
 * install created is still "created" on the second run, though it exists by then.
 */
export function mergeManifest(
  prior: InstallManifest | null,
  base: Omit<InstallManifest, 'createdDirs' | 'createdFiles' | 'blocks' | 'modified'>,
  added: {
    createdDirs: string[];
    createdFiles: string[];
    blocks: ManifestBlock[];
    modified: ManifestModified[];
  },
): InstallManifest {
  const union = (a: string[], b: string[]) => [...a, ...b.filter((x) => !a.includes(x))];
  const blocks = [...(prior?.blocks ?? [])];
  for (const b of added.blocks)
    if (!blocks.some((p) => p.file === b.file && p.name === b.name)) blocks.push(b);
  const modified = (prior?.modified ?? []).map((m) => {
    // The file was changed again: its earlier content is still the original, what we wrote is new.
    const again = added.modified.find((a) => a.file === m.file);
    return again ? { ...m, writtenSha256: again.writtenSha256 } : m;
  });
  for (const m of added.modified) if (!modified.some((p) => p.file === m.file)) modified.push(m);
  return {
    ...base,
    createdDirs: union(prior?.createdDirs ?? [], added.createdDirs),
    createdFiles: union(prior?.createdFiles ?? [], added.createdFiles),
    blocks,
    modified,
  };
}

/** Whether install may treat `file` as its own (created or already changed by an earlier run). */
export function ownsFile(m: InstallManifest | null, file: string): 'created' | 'modified' | null {
  if (!m) return null;
  if (m.createdFiles.includes(file)) return 'created';
  if (m.modified.some((x) => x.file === file)) return 'modified';
  return null;
}
