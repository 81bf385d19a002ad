// The optional persistent store: with linuxkit.disk=/dev/vda the guest formats a blank disk
// once, keeps /nix on it, and a path added in one boot is still valid in the next.
import t from 'tap';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { testGuestImage } from '../helpers/debian-mirror.js';
import {
  GUEST_DISK_DEVICE,
  GUEST_READY_MARKER,
  guestKernelCmdline,
} from '../../daemon/image/guest-contract.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { bootVm, makeKeys, powerDown, sshUntilOk, waitForConsole, type TestVm } from './vm-harness.js';

for (const tool of ['qemu-system-x86_64', 'ssh', 'ssh-keygen']) requireTool(tool);

const image = await testGuestImage('x86_64');
const dir = await tempDir('disk');
const keys = await makeKeys(dir);
const disk = join(dir, 'nix.raw');
const vms: TestVm[] = [];
t.teardown(async () => {
  for (const vm of vms) vm.kill();
  await rm(dir, { recursive: true, force: true });
});

// A sparse 2 GiB blank disk, as the daemon would create it.
const fh = await open(disk, 'w');
await fh.truncate(2 * 1024 * 1024 * 1024);
await fh.close();
const withDisk = { ...image, cmdline: guestKernelCmdline(image.cmdline, { disk: GUEST_DISK_DEVICE }) };

let added = '';

t.test('first boot formats the blank disk and keeps the store on it', async (t) => {
  const vm = await bootVm({ image: withDisk, dir, keys, disk });
  vms.push(vm);
  await waitForConsole(vm, GUEST_READY_MARKER, 180_000);
  const { stdout } = await sshUntilOk(
    vm,
    keys,
    `grep -E ' /nix ext4 | /tmp ext4 ' /proc/mounts | cut -d' ' -f1,2,3; echo kept > /tmp/kept && nix-store --add /tmp/kept`,
    60_000,
  );
  t.match(stdout, /^\/dev\/vda \/nix ext4$/m, '/nix is the ext4 disk');
  t.match(stdout, /^\/dev\/vda \/tmp ext4$/m, 'build directories live on the disk too');
  added = /^\/nix\/store\/[0-9a-z]{32}-kept$/m.exec(stdout)?.[0] ?? '';
  t.ok(added, `nix-store --add gave a store path: ${stdout}`);
  t.match(await readFile(vm.consoleLog, 'utf8'), /linuxkit-nix: formatting \/dev\/vda \(ext4\)/);
  const exit = await powerDown(vm, 10_000);
  t.equal(exit.code, 0, `QEMU exits 0 after the power button (${Math.round(exit.tookMs)} ms)`);
});

t.test('second boot finds the same store, without formatting again', async (t) => {
  t.ok(added, 'the first boot added a path');
  const vm = await bootVm({ image: withDisk, dir, keys, disk });
  vms.push(vm);
  await waitForConsole(vm, GUEST_READY_MARKER, 180_000);
  const { stdout } = await sshUntilOk(
    vm,
    keys,
    `nix-store --verify-path ${added} && cat ${added}; dmesg | grep -c 'recovery complete' || true`,
    60_000,
  );
  t.match(
    stdout,
    /^kept\n0\n$/,
    'the path is valid and intact; the clean unmount needed no journal recovery',
  );
  t.notMatch(await readFile(vm.consoleLog, 'utf8'), /formatting/);
  const exit = await powerDown(vm, 10_000);
  t.equal(exit.code, 0);
});
