// Keys reach a hyperkit guest as a cpio archive appended to the initrd. GNU cpio (the same
// "newc" format the kernel unpacks) checks what was written.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  guestFilesArchive,
  newcArchive,
  writeBootInitrd,
} from '../../../daemon/backends/hyperkit/guest-files.js';
import { requireTool, tempDir } from '../../helpers/env.js';

requireTool('cpio');

async function keys(t: { teardown(fn: () => unknown): void }) {
  const dir = await tempDir('gf');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'client.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@host\n');
  await writeFile(
    join(dir, 'host key'),
    '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n',
  );
  const files = {
    'linuxkit/ssh_host_ed25519_key': join(dir, 'host key'),
    'linuxkit/authorized_keys': join(dir, 'client.pub'),
  };
  return { dir, files };
}

t.test('the archive is newc that cpio lists and unpacks, directories first, files 0600', async (t) => {
  const { dir, files } = await keys(t);
  const archive = join(dir, 'files.cpio');
  await writeFile(archive, await guestFilesArchive(files));
  const listing = execFileSync('cpio', ['-it', '--quiet', '-F', archive], { encoding: 'utf8' });
  t.same(listing.trim().split('\n'), [
    'guest-files',
    'guest-files/linuxkit',
    'guest-files/linuxkit/authorized_keys',
    'guest-files/linuxkit/ssh_host_ed25519_key',
  ]);
  const out = join(dir, 'out');
  await mkdir(out);
  execFileSync('cpio', ['-idm', '--quiet', '-F', archive], { cwd: out });
  t.equal(
    await readFile(join(out, 'guest-files/linuxkit/authorized_keys'), 'utf8'),
    await readFile(files['linuxkit/authorized_keys'], 'utf8'),
  );
  t.equal(
    await readFile(join(out, 'guest-files/linuxkit/ssh_host_ed25519_key'), 'utf8'),
    await readFile(files['linuxkit/ssh_host_ed25519_key'], 'utf8'),
  );
  t.equal((await stat(join(out, 'guest-files/linuxkit/ssh_host_ed25519_key'))).mode & 0o777, 0o600);
});

t.test('the same inputs give the same bytes', async (t) => {
  const { files } = await keys(t);
  t.same(await guestFilesArchive(files), await guestFilesArchive({ ...files }));
  t.equal(newcArchive([]).subarray(0, 6).toString(), '070701');
});

t.test(
  'the boot initrd is the image initrd, padding, then the archive; mode 0600 even from a read-only image',
  async (t) => {
    const { dir, files } = await keys(t);
    const initrd = join(dir, 'initrd');
    const image = Buffer.from('pretend-compressed-initrd-of-odd-length');
    await writeFile(initrd, image);
    await chmod(initrd, 0o444);
    const target = join(dir, 'boot-initrd.img');
    t.equal(await writeBootInitrd(initrd, files, target), target);
    const boot = await readFile(target);
    t.same(boot.subarray(0, image.length), image, 'starts with the image initrd, unchanged');
    t.ok(
      boot.subarray(image.length, 512).every((b) => b === 0),
      'zero padding to a 512-byte boundary',
    );
    t.equal(boot.subarray(512, 518).toString(), '070701', 'the archive starts aligned');
    t.same(boot.subarray(512), await guestFilesArchive(files));
    t.equal((await stat(target)).mode & 0o777, 0o600);
    t.equal((await stat(initrd)).mode & 0o777, 0o444, 'the image initrd is untouched');
  },
);

t.test('no guest files: the image initrd is booted as it is; no initrd: the archive alone', async (t) => {
  const { dir, files } = await keys(t);
  t.equal(await writeBootInitrd('/img/initrd', {}, join(dir, 'x')), '/img/initrd');
  const target = join(dir, 'boot-initrd.img');
  await writeBootInitrd('', files, target);
  t.same(await readFile(target), await guestFilesArchive(files));
});

t.test('bad names and unreadable files are named in the error', async (t) => {
  const { dir, files } = await keys(t);
  await t.rejects(guestFilesArchive({ '../etc/passwd': files['linuxkit/authorized_keys'] }), {
    message: 'guestFiles name "../etc/passwd" must be a relative path of [A-Za-z0-9._-] components',
  });
  await t.rejects(guestFilesArchive({ 'linuxkit/authorized_keys': join(dir, 'missing.pub') }), {
    message: new RegExp(
      `^guestFiles\\["linuxkit/authorized_keys"\\]: cannot read ${dir}/missing.pub: ENOENT`,
    ),
  });
});
