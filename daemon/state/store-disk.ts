// The guest's persistent /nix: a sparse raw disk image in the state directory, sized by the config's
// diskGiB. The guest formats it ext4 on first use and grows its ext4 into a bigger file at boot, so
// raising diskGiB grows the store; a lower diskGiB is refused (ext4 holds the store: it cannot be
// shrunk in place). `ephemeral` makes a fresh disk at every start; `linuxkitctl disk reset`
// removes it while the builder is stopped.
import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const STORE_DISK_NAME = 'nix-disk.raw';

const GIB = 1024 ** 3;

/** A lower diskGiB than the existing disk: the disk and its store are kept, the start refused. */
export class StoreDiskShrinkError extends Error {
  override readonly name = 'StoreDiskShrinkError';
}

export function storeDiskPath(stateDir: string): string {
  return join(stateDir, STORE_DISK_NAME);
}

/** Whole GiB as `3`, anything else (a disk made by hand) with two decimals. */
export function formatGiB(bytes: number): string {
  return bytes % GIB === 0 ? String(bytes / GIB) : (bytes / GIB).toFixed(2);
}

async function sizeOf(path: string): Promise<number | null> {
  return stat(path).then(
    (s) => s.size,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    },
  );
}

export interface StoreDiskOptions {
  /** A fresh disk at each start: the old one (and its store) is removed first. */
  ephemeral?: boolean;
}

/**
 * Returns the disk path for `diskGiB` > 0 (creating or growing it), or undefined for a store in RAM.
 * Call once per start, with no VM running: `ephemeral` removes the disk the last boot used.
 */
export async function ensureStoreDisk(
  stateDir: string,
  diskGiB: number,
  opts: StoreDiskOptions = {},
): Promise<string | undefined> {
  if (diskGiB <= 0) return undefined;
  const path = storeDiskPath(stateDir);
  const want = diskGiB * GIB;
  if (opts.ephemeral) await rm(path, { force: true });
  const have = await sizeOf(path);
  if (have === want) return path;
  if (have !== null && have > want) {
    throw new StoreDiskShrinkError(
      `diskGiB is ${diskGiB} but the store disk ${path} is ${formatGiB(have)} GiB: a store disk is ` +
        `never shrunk (its ext4 holds the Nix store), so the disk was left as it is. Set diskGiB ` +
        `to ${Math.ceil(have / GIB)} or more, or start the store over at ${diskGiB} GiB with ` +
        '`linuxkitctl stop` and `linuxkitctl disk reset` (the store is lost)',
    );
  }
  // Sparse: truncate only sets the size; blocks are allocated as the guest writes. The guest's
  // /init grows the ext4 into the new size (resize2fs, online) at the next boot.
  const fh = await open(path, have === null ? 'wx' : 'r+', 0o600);
  try {
    await fh.truncate(want);
  } finally {
    await fh.close();
  }
  return path;
}

/** Removes the store disk, so the next boot formats a new one. The builder must be stopped. */
export async function resetStoreDisk(
  stateDir: string,
): Promise<{ path: string; removedBytes: number | null }> {
  const path = storeDiskPath(stateDir);
  const removedBytes = await sizeOf(path);
  await rm(path, { force: true });
  return { path, removedBytes };
}
