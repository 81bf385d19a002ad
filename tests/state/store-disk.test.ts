import t from 'tap';
import { open, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensureStoreDisk,
  resetStoreDisk,
  STORE_DISK_NAME,
  StoreDiskShrinkError,
} from '../../daemon/state/store-disk.js';
import { tempDir } from '../helpers/env.js';

const GIB = 1024 ** 3;

async function writeAt(path: string, text: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from(text), 0, text.length, offset);
  await fh.close();
}

async function readAt(path: string, length: number, offset: number): Promise<string> {
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(length);
  await fh.read(buf, 0, length, offset);
  await fh.close();
  return buf.toString();
}

t.test('diskGiB 0 keeps the store in RAM: no disk, ephemeral or not', async (t) => {
  const dir = await tempDir('disk');
  t.equal(await ensureStoreDisk(dir, 0), undefined);
  t.equal(await ensureStoreDisk(dir, 0, { ephemeral: true }), undefined);
  await t.rejects(stat(join(dir, STORE_DISK_NAME)), { code: 'ENOENT' });
});

t.test('a sparse disk of the configured size, 0600, grown when diskGiB grows, contents kept', async (t) => {
  const dir = await tempDir('disk');
  const path = (await ensureStoreDisk(dir, 2))!;
  const s = await stat(path);
  t.equal(s.size, 2 * GIB);
  t.equal(s.mode & 0o777, 0o600);
  t.ok(s.blocks * 512 < 1024 ** 2, `sparse: ${s.blocks * 512} bytes allocated`);
  await writeAt(path, 'ext4 superblock stand-in', 1024);
  t.equal(await ensureStoreDisk(dir, 2), path, 'the same size: the same disk');
  await ensureStoreDisk(dir, 3);
  t.equal((await stat(path)).size, 3 * GIB, 'grown: the guest grows its ext4 into it at boot');
  t.equal(await readAt(path, 24, 1024), 'ext4 superblock stand-in', 'what the guest wrote is kept');
});

t.test('a lower diskGiB is refused with both sizes and the way out, and the disk is kept', async (t) => {
  const dir = await tempDir('disk');
  const path = (await ensureStoreDisk(dir, 3))!;
  await writeAt(path, 'the store', 4096);
  const err = await ensureStoreDisk(dir, 1).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, StoreDiskShrinkError);
  const message = (err as Error).message;
  t.match(message, /^diskGiB is 1 but the store disk \S+nix-disk\.raw is 3 GiB/);
  t.match(message, /Set diskGiB to 3 or more/);
  t.match(message, /linuxkitctl disk reset/);
  t.equal((await stat(path)).size, 3 * GIB, 'never shrunk');
  t.equal(await readAt(path, 9, 4096), 'the store', 'the store is kept');
});

t.test('a disk of an odd size (made by hand) is named with two decimals', async (t) => {
  const dir = await tempDir('disk');
  await writeFile(join(dir, STORE_DISK_NAME), '');
  const fh = await open(join(dir, STORE_DISK_NAME), 'r+');
  await fh.truncate(1.5 * GIB);
  await fh.close();
  await t.rejects(ensureStoreDisk(dir, 1), { message: /is 1\.50 GiB: .*Set diskGiB to 2 or more/s });
});

t.test('ephemeral: every start gets a fresh, empty disk at the configured size', async (t) => {
  const dir = await tempDir('disk');
  const path = (await ensureStoreDisk(dir, 3, { ephemeral: true }))!;
  await writeAt(path, 'last boot', 1024);
  t.equal(await ensureStoreDisk(dir, 3, { ephemeral: true }), path);
  t.equal(await readAt(path, 9, 1024), '\0'.repeat(9), 'what the last boot wrote is gone');
  await ensureStoreDisk(dir, 1, { ephemeral: true });
  t.equal((await stat(path)).size, GIB, 'a lower diskGiB is no conflict: the disk is new');
  t.equal((await stat(path)).mode & 0o777, 0o600);
});

t.test('reset removes the disk and says how big it was; no disk is no error', async (t) => {
  const dir = await tempDir('disk');
  const path = (await ensureStoreDisk(dir, 2))!;
  t.same(await resetStoreDisk(dir), { path, removedBytes: 2 * GIB });
  await t.rejects(stat(path), { code: 'ENOENT' });
  t.same(await resetStoreDisk(dir), { path, removedBytes: null });
  t.equal(await ensureStoreDisk(dir, 1), path, 'the next start makes a new one');
  t.equal((await stat(path)).size, GIB);
});
