// accel auto on a machine whose KVM looks usable but cannot run a guest: the real daemon picks kvm,
// QEMU fails to use it, and the daemon falls back to tcg by itself, says why in status and in an
// `accel-fallback` event, and the builder becomes healthy with no flag. This machine has no
// /dev/kvm, so LINUXKIT_KVM_DEVICE=/dev/null makes the host facts believe in one; QEMU then fails
// with its own error (failed to initialize kvm). The hang case (no console output) is tested
// with the watcher in tests/backends/accel-fallback.test.ts.
import t from 'tap';
import { pidsMatching, requireTool } from '../helpers/env.js';
import { isHealthy, startTestDaemon } from '../helpers/daemon-process.js';

requireTool('qemu-system-x86_64');

const daemon = await startTestDaemon({ accel: null, env: { LINUXKIT_KVM_DEVICE: '/dev/null' } });
t.teardown(() => {
  daemon.proc.kill('SIGKILL');
  for (const pid of pidsMatching(`${daemon.stateDir}/qmp.sock`)) process.kill(pid, 'SIGKILL');
});

t.test('a KVM that cannot run the guest: auto falls back to tcg and the builder is healthy', async (t) => {
  const s = await daemon.waitFor(isHealthy, 240_000, 'the builder to be healthy after the fallback');
  t.equal(s.accel, 'tcg', 'running under tcg');
  t.match(
    s.backendReason,
    /kvm is not usable: kvm could not run a guest here \(QEMU: (Could not access KVM kernel module|failed to initialize kvm)/,
  );
  // The event came before this test could subscribe (the first start fails at once); the daemon
  // logs the same message it emits.
  const log = await daemon.client.logs({ source: 'daemon', lines: 500 });
  t.ok(
    log.lines.some((l) => /kvm could not run the guest \(QEMU: [^)]*\): using tcg from now on/.test(l)),
    'the daemon says it dropped kvm for tcg',
  );
  t.equal(s.state, 'running');
  t.equal(s.failedReason, null);
  t.comment(`status.backendReason: ${s.backendReason}`);
});
