// The guest image booted for real under QEMU/tcg, with keys handed in through fw_cfg: SSH with
// the pinned host key, Nix on root's non-interactive PATH, the hostname, a clean ACPI power-off;
// and, without keys, a clear error line on the console followed by the VM's exit.
import t from 'tap';
import { readFile, rm } from 'node:fs/promises';
import { testGuestImage } from '../helpers/debian-mirror.js';
import { GUEST_READY_MARKER, guestBootError } from '../../daemon/image/guest-contract.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { bootVm, makeKeys, powerDown, sshUntilOk, waitForConsole, type TestVm } from './vm-harness.js';

for (const tool of ['qemu-system-x86_64', 'ssh', 'ssh-keygen']) requireTool(tool);

const image = await testGuestImage('x86_64');
const dir = await tempDir('boot');
const keys = await makeKeys(dir);
const vms: TestVm[] = [];
t.teardown(async () => {
  for (const vm of vms) vm.kill(); // leave no QEMU behind, whatever failed
  await rm(dir, { recursive: true, force: true });
});

t.test('boots to SSH, runs Nix as root, and powers off through ACPI with exit code 0', async (t) => {
  const vm = await bootVm({ image, dir, keys });
  vms.push(vm);
  const markerAt = await waitForConsole(vm, GUEST_READY_MARKER, 120_000);
  const { stdout, atMs: sshAt } = await sshUntilOk(vm, keys, 'nix-store --version; uname -n', 60_000);
  t.comment(`QEMU start → "${GUEST_READY_MARKER}": ${Math.round(markerAt - vm.startedMs)} ms`);
  t.comment(`QEMU start → first successful ssh: ${Math.round(sshAt - vm.startedMs)} ms`);
  t.match(stdout, /^nix-store \(Nix\) 2\.8\.\d+\nlinuxkit-builder\n$/);

  // What the remote builder relies on: the store writable by root, nix-daemon on the PATH,
  // the settings from the image, DNS from QEMU's user network, and no passwords.
  const checks = await sshUntilOk(
    vm,
    keys,
    [
      // 2>&1: Nix warns on stderr when it cannot load libnss_dns.so.2
      'echo linuxkit > /tmp/probe && nix-store --add /tmp/probe 2>&1',
      'nix-daemon --version',
      'nix show-config | grep -E "^(sandbox|substituters|build-users-group|min-free|max-free) ="',
      'grep nameserver /etc/resolv.conf',
    ].join('; '),
    30_000,
  );
  t.match(checks.stdout, /^\/nix\/store\/[0-9a-z]{32}-probe$/m, 'nix-store --add works for root');
  t.match(checks.stdout, /^nix-daemon \(Nix\) 2\.8/m);
  t.match(checks.stdout, /^sandbox = false$/m);
  t.match(checks.stdout, /^substituters = $/m);
  t.match(checks.stdout, /^build-users-group = $/m);
  t.match(checks.stdout, /^min-free = 67108864$/m);
  t.match(checks.stdout, /^max-free = 268435456$/m);
  t.match(checks.stdout, /^nameserver 10\.0\.2\.3$/m);
  t.notMatch(checks.stdout, /unable to load nss_dns backend/);

  const exit = await powerDown(vm, 10_000);
  t.comment(`system_powerdown → QEMU exit: ${Math.round(exit.tookMs)} ms`);
  t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'QEMU exits 0');
  const console = await readFile(vm.consoleLog, 'utf8');
  t.match(console, /linuxkit-nix: shutting down/);
  t.equal(guestBootError(console), null, 'no error line on the console');
});

t.test('without keys handed in, the guest prints why and powers off', async (t) => {
  const vm = await bootVm({ image, dir });
  vms.push(vm);
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    vm.exited,
    new Promise<null>((r) => (timer = setTimeout(() => r(null), 120_000))),
  ]);
  // A timer left running would hold the test file open for the rest of its 2 minutes.
  clearTimeout(timer);
  t.ok(exit, 'QEMU exits on its own');
  t.equal(exit?.code, 0, 'a power-off, not a crash');
  const console = await readFile(vm.consoleLog, 'utf8');
  t.match(guestBootError(console), /^no client key handed in \(fw_cfg opt\/linuxkit\/authorized_keys\)/);
  t.notMatch(console, GUEST_READY_MARKER);
});
