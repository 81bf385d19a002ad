import t from 'tap';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureStoreDisk, STORE_DISK_NAME } from '../../daemon/state/store-disk.js';
import { tempDir } from '../helpers/env.js';

t.test('diskGiB 0 keeps the store in RAM: no disk', async (t) => {
  const dir = await tempDir('disk');
  t.equal(await ensureStoreDisk(dir, 0), undefined);
  await t.rejects(stat(join(dir, STORE_DISK_NAME)), { code: 'ENOENT' });
});

t.test(
  'a sparse disk of the configured size, 0600, grown when diskGiB grows, never shrunk, contents kept',
  async (t) => {
    const dir = await tempDir('disk');
    const path = (await ensureStoreDisk(dir, 2))!;
    const s = await stat(path);
    t.equal(s.size, 2 * 1024 ** 3);
    t.equal(s.mode & 0o777, 0o600);
    t.ok(s.blocks * 512 < 1024 ** 2, `sparse: ${s.blocks * 512} bytes allocated`);
    const fh = await import('node:fs/promises').then((m) => m.open(path, 'r+'));
    await fh.write(Buffer.from('ext4 superblock stand-in'), 0, 24, 1024);
    await fh.close();
    await ensureStoreDisk(dir, 3);
    t.equal((await stat(path)).size, 3 * 1024 ** 3);
    await ensureStoreDisk(dir, 1);
    t.equal((await stat(path)).size, 3 * 1024 ** 3, 'never shrunk');
    const rd = await import('node:fs/promises').then((m) => m.open(path, 'r'));
    const buf = Buffer.alloc(24);
    await rd.read(buf, 0, 24, 1024);
    await rd.close();
    const head = buf.toString();
    t.equal(head, 'ext4 superblock stand-in', 'what the guest wrote is kept');
  },
);
