// Which firmware the x86_64 guest boots through: qboot from the QEMU's own data directory under
// tcg, found the way each installer lays QEMU out; QEMU's default otherwise.
import t from 'tap';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findQboot, firmwareFor, qemuDataDir, wantsQboot } from '../../../daemon/backends/qemu/firmware.js';
import { tempDir } from '../../helpers/env.js';

/** A QEMU installed under `prefix` (bin/, share/qemu/), with or without qboot. */
async function installQemu(prefix: string, withQboot: boolean): Promise<string> {
  await mkdir(join(prefix, 'bin'), { recursive: true });
  await mkdir(join(prefix, 'share', 'qemu'), { recursive: true });
  const executable = join(prefix, 'bin', 'qemu-system-x86_64');
  await writeFile(executable, '#!/bin/sh\nexit 0\n');
  await chmod(executable, 0o755);
  if (withQboot) await writeFile(join(prefix, 'share', 'qemu', 'qboot.rom'), 'rom');
  return executable;
}

t.test('only an x86_64 guest under tcg asks for qboot', async (t) => {
  t.ok(wantsQboot({ arch: 'x86_64', accel: 'tcg' }));
  for (const accel of ['kvm', 'hvf'] as const) t.notOk(wantsQboot({ arch: 'x86_64', accel }), accel);
  for (const accel of ['tcg', 'kvm', 'hvf'] as const) t.notOk(wantsQboot({ arch: 'aarch64', accel }), accel);
});

t.test("the data directory is <prefix>/share/qemu beside the executable's bin", async (t) => {
  t.equal(qemuDataDir('/usr/bin/qemu-system-x86_64'), '/usr/share/qemu');
  t.equal(
    qemuDataDir('/opt/homebrew/Cellar/qemu/9.2.3/bin/qemu-system-x86_64'),
    '/opt/homebrew/Cellar/qemu/9.2.3/share/qemu',
  );
});

t.test('qboot is found by name on PATH, by absolute path, and through a symlink', async (t) => {
  const root = await tempDir('qemu-firmware');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const direct = await installQemu(join(root, 'usr'), true);
  const env = { PATH: join(root, 'usr', 'bin') };
  t.equal(await findQboot('qemu-system-x86_64', env), join(root, 'usr', 'share', 'qemu', 'qboot.rom'));
  t.equal(await findQboot(direct, {}), join(root, 'usr', 'share', 'qemu', 'qboot.rom'));

  // Homebrew: the bin on PATH holds a symlink into the Cellar, whose share/qemu has the firmware.
  const cellar = join(root, 'homebrew', 'Cellar', 'qemu', '9.2.3');
  const real = await installQemu(cellar, true);
  await mkdir(join(root, 'homebrew', 'bin'), { recursive: true });
  await symlink(real, join(root, 'homebrew', 'bin', 'qemu-system-x86_64'));
  t.equal(
    await findQboot('qemu-system-x86_64', { PATH: join(root, 'homebrew', 'bin') }),
    join(cellar, 'share', 'qemu', 'qboot.rom'),
  );
});

t.test("a QEMU without qboot, or one that is not there, keeps QEMU's default", async (t) => {
  const root = await tempDir('qemu-firmware');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await installQemu(join(root, 'usr'), false);
  const env = { PATH: join(root, 'usr', 'bin') };
  t.equal(await findQboot('qemu-system-x86_64', env), null, 'no qboot.rom in its data directory');
  t.equal(await findQboot('qemu-system-x86_64', { PATH: join(root, 'elsewhere') }), null, 'not on PATH');
  t.equal(await findQboot('relative/qemu-system-x86_64', env), null, 'a relative path is not looked up');
});

t.test('firmwareFor asks only for the guests that boot through qboot', async (t) => {
  const root = await tempDir('qemu-firmware');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const qemu = await installQemu(join(root, 'usr'), true);
  t.equal(
    await firmwareFor({ arch: 'x86_64', accel: 'tcg' }, qemu),
    join(root, 'usr', 'share', 'qemu', 'qboot.rom'),
  );
  t.equal(await firmwareFor({ arch: 'x86_64', accel: 'kvm' }, qemu), null);
  t.equal(await firmwareFor({ arch: 'aarch64', accel: 'tcg' }, qemu), null);
});
