// The guest's own contract, read from the project's guest/ folder: guest/init and guest/rootfs/.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { GuestFile } from './initramfs.js';

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

export interface GuestContract {
  init: Buffer;
  rootfs: GuestFile[];
  /** sha256 over every path, mode and content: part of the image's cache key. */
  digest: string;
}

export async function readGuestContract(guestDir: string): Promise<GuestContract> {
  const init = await readFile(join(guestDir, 'init'));
  const rootDir = join(guestDir, 'rootfs');
  const rootfs: GuestFile[] = [];
  for (const p of await walk(rootDir)) {
    const [data, st] = await Promise.all([readFile(p), stat(p)]);
    rootfs.push({
      path: relative(rootDir, p).split('\\').join('/'),
      data,
      mode: st.mode & 0o111 ? 0o755 : 0o644,
    });
  }
  const h = createHash('sha256').update('init\0').update(init);
  for (const f of rootfs) h.update(`\0${f.path}\0${f.mode & 0o111 ? 'x' : '-'}\0`).update(f.data);
  return { init, rootfs, digest: h.digest('hex') };
}
