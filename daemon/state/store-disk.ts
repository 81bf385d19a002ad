// The guest's persistent /nix: a sparse raw disk image in the state directory, sized by the config's
// diskGiB. It grows when diskGiB grows (the guest's ext4 is formatted once, on first boot) and is
// never shrunk or deleted here: it holds the builder's store.
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const STORE_DISK_NAME = 'nix-disk.raw';

/** Returns the disk path for `diskGiB` > 0 (creating or growing it), or undefined for a store in RAM. */
export async function ensureStoreDisk(stateDir: string, diskGiB: number): Promise<string | undefined> {
  if (diskGiB <= 0) return undefined;
  const path = join(stateDir, STORE_DISK_NAME);
  const want = diskGiB * 1024 ** 3;
  const have = await stat(path).then(
    (s) => s.size,
    () => -1,
  );
  if (have >= want) return path;
  // Sparse: truncate only sets the size; blocks are allocated as the guest writes.
  const fh = await open(path, have < 0 ? 'wx' : 'r+', 0o600);
  try {
    await fh.truncate(want);
  } finally {
    await fh.close();
  }
  return path;
}
