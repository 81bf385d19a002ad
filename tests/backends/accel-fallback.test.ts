// accel auto and a hardware accelerator that cannot run the guest: QEMU's failure words and a
// silent console are recognised, a tcg or explicitly chosen accelerator is left alone, and the
// choice made again names why the accelerator was dropped.
import t from 'tap';
import {
  AccelFallback,
  SILENT_BOOT_MS,
  acceleratorFailure,
  silentBoot,
} from '../../daemon/backends/accel-fallback.js';
import { chooseBackend } from '../../daemon/backends/choose-backend.js';
import type { Accelerator } from '../../daemon/backend.js';
import type { HostFacts } from '../../daemon/host/host-facts.js';

t.test("QEMU's words for an accelerator that cannot run the guest", async (t) => {
  t.equal(
    acceleratorFailure(
      'kvm',
      'could not start the VM: QEMU exited before it was up: qemu-system-x86_64: -accel kvm: failed to initialize kvm: No such file or directory',
    ),
    'QEMU: failed to initialize kvm: No such file or directory',
  );
  t.equal(
    acceleratorFailure('kvm', 'exited with code 1: KVM internal error. Suberror: 1\nemulation failure'),
    'QEMU: KVM internal error. Suberror: 1',
  );
  t.equal(acceleratorFailure('tcg', 'KVM internal error'), null, 'never for tcg');
  t.equal(acceleratorFailure('kvm', 'killed by SIGKILL'), null, 'an ordinary exit is not one');
});

t.test('a console that stays empty under kvm is a hang; any output, or tcg, is not', async (t) => {
  t.equal(
    silentBoot('kvm', 0, SILENT_BOOT_MS),
    `no console output ${SILENT_BOOT_MS / 1000} s after the start under kvm`,
  );
  t.equal(silentBoot('kvm', 12, SILENT_BOOT_MS), null);
  t.equal(silentBoot('kvm', 0, SILENT_BOOT_MS - 1), null);
  t.equal(silentBoot('tcg', 0, 10 * SILENT_BOOT_MS), null);
});

t.test('auto drops a failed kvm for tcg and says why', async (t) => {
  const host: HostFacts = {
    platform: 'linux',
    machineArch: 'x64',
    processArch: 'x64',
    rosetta: false,
    hvSupport: null,
    kvmUsable: true,
    tools: { 'qemu-system-x86_64': '/usr/bin/qemu-system-x86_64' },
  };
  const wanted = { backend: 'auto', accel: 'auto' as const, arch: 'x86_64' as const };
  t.equal(chooseBackend(wanted, host).accel, 'kvm', 'kvm while it looks usable');
  const after = chooseBackend(wanted, { ...host, failedAccels: { kvm: 'QEMU: KVM internal error' } });
  t.equal(after.accel, 'tcg');
  t.match(
    after.reason,
    /accel tcg, emulated: kvm is not usable: kvm could not run a guest here \(QEMU: KVM internal error\)/,
  );
});

function fallbackHarness(current: { accel: Accelerator; auto: boolean }, consoleBytes: number | null) {
  const failures: Array<{ accel: string; reason: string; hanging: boolean }> = [];
  const timers: Array<() => void> = [];
  const f = new AccelFallback({
    current: () => current,
    consoleBytes: async () => consoleBytes,
    failed: (accel, reason, hanging) => failures.push({ accel, reason, hanging }),
    setTimeout: (fn) => timers.push(fn),
    clearTimeout: () => undefined,
  });
  return { f, failures, timers };
}

const exitEvent = (message: string) => ({ at: '', type: 'exit' as const, message });
const starting = {
  at: '',
  type: 'state' as const,
  state: 'starting' as const,
  from: 'stopped' as const,
  message: '',
};

t.test('the watcher reports a failed start and a silent boot under auto kvm', async (t) => {
  const h = fallbackHarness({ accel: 'kvm', auto: true }, 0);
  h.f.observe(exitEvent('could not start the VM: failed to initialize kvm: No such file or directory'));
  t.same(h.failures, [
    { accel: 'kvm', reason: 'QEMU: failed to initialize kvm: No such file or directory', hanging: false },
  ]);
  h.f.observe(starting);
  t.equal(h.timers.length, 1, 'a silence check is scheduled at the start');
  h.timers[0]!();
  await new Promise((r) => setImmediate(r));
  t.match(h.failures[1], { accel: 'kvm', hanging: true, reason: /no console output/ });
});

t.test(
  'an accelerator named in the config, tcg, or a booting guest that prints are left alone',
  async (t) => {
    const named = fallbackHarness({ accel: 'kvm', auto: false }, 0);
    named.f.observe(exitEvent('KVM internal error'));
    named.f.observe(starting);
    t.same(named.failures, []);
    t.equal(named.timers.length, 0);
    const tcg = fallbackHarness({ accel: 'tcg', auto: true }, 0);
    tcg.f.observe(starting);
    t.equal(tcg.timers.length, 0);
    const printing = fallbackHarness({ accel: 'kvm', auto: true }, 4096);
    printing.f.observe(starting);
    printing.timers[0]!();
    await new Promise((r) => setImmediate(r));
    t.same(printing.failures, []);
  },
);
