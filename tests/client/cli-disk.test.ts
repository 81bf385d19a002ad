// linuxkitctl disk reset, compiled, against a real API server on a temporary socket.
import t from 'tap';
import { FakeController, STOPPED_NO_VM } from '../api/fixtures/fake-controller.js';
import { assertFreshBuild, runCli, startApi } from './fixtures/harness.js';

assertFreshBuild();

t.test('disk reset while stopped removes the store disk and says what happens next', async (t) => {
  const fake = new FakeController(STOPPED_NO_VM);
  const socket = await startApi(t, fake);
  const first = await runCli(['disk', 'reset'], { LINUXKIT_SOCKET: socket });
  t.equal(first.code, 0);
  t.equal(
    first.stdout,
    'removed the store disk /var/lib/linuxkit-nix/nix-disk.raw (2 GiB); the next start formats a new, empty store\n',
  );
  const again = await runCli(['disk', 'reset'], { LINUXKIT_SOCKET: socket });
  t.equal(again.stdout, 'no store disk at /var/lib/linuxkit-nix/nix-disk.raw: nothing to reset\n');
  t.same(fake.calls, ['resetDisk', 'resetDisk']);
});

t.test('disk reset --json prints the API answer', async (t) => {
  const fake = new FakeController(STOPPED_NO_VM);
  const socket = await startApi(t, fake);
  const { code, stdout } = await runCli(['disk', 'reset', '--json'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 0);
  t.match(JSON.parse(stdout), { path: '/var/lib/linuxkit-nix/nix-disk.raw', removedBytes: 2 * 1024 ** 3 });
});

t.test('disk reset while running exits 1 with the way out, and the disk is kept', async (t) => {
  const fake = new FakeController();
  const socket = await startApi(t, fake);
  const { code, stdout, stderr } = await runCli(['disk', 'reset'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 1);
  t.equal(stdout, '');
  t.equal(
    stderr,
    'linuxkitctl: conflict: the builder is running: the store disk is reset only while the builder ' +
      'is stopped (linuxkitctl stop, then linuxkitctl disk reset)\n',
  );
  t.equal(fake.diskBytes, 2 * 1024 ** 3);
});

t.test('disk needs its one command, reset; the daemon is not asked otherwise', async (t) => {
  const fake = new FakeController(STOPPED_NO_VM);
  const socket = await startApi(t, fake);
  const none = await runCli(['disk'], { LINUXKIT_SOCKET: socket });
  t.equal(none.code, 1);
  t.match(none.stderr, /^linuxkitctl: disk takes one command, reset \(linuxkitctl disk reset\)\n/);
  const other = await runCli(['disk', 'grow'], { LINUXKIT_SOCKET: socket });
  t.equal(other.code, 1);
  t.match(other.stderr, /disk takes one command, reset \(linuxkitctl disk reset\), not "grow"/);
  const option = await runCli(['disk', 'reset', '--wait'], { LINUXKIT_SOCKET: socket });
  t.equal(option.code, 1);
  t.match(option.stderr, /--wait is not an option of disk/);
  t.same(fake.calls, []);
});

t.test('help lists disk reset', async (t) => {
  const { stdout } = await runCli(['help'], {});
  t.match(stdout, /disk reset \[--json\]\s+Start the store over/);
});
