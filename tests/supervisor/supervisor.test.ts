// The supervisor loop against a FakeBackend, a FakeProbe and a FakeClock: every wait is fake
// time moved by hand, so nothing here depends on how loaded the machine is.
import t from 'tap';
import { ConflictError } from '../../daemon/controller.js';
import { harness, settle, statesSeen, type Harness } from './fakes.js';

async function running(over: Parameters<typeof harness>[0] = {}): Promise<Harness> {
  const h = harness(over);
  await h.sup.init();
  await settle();
  return h;
}

t.test('starts the VM on init and becomes running once the probe answers', async (t) => {
  const h = await running();
  const s = h.sup.status();
  t.equal(h.backend.started.length, 1, 'one start');
  t.equal(h.backend.prepared.length, 1, 'stale files cleared before the start');
  t.match(s, {
    state: 'running',
    healthy: true,
    desired: 'running',
    vm: { pid: h.backend.current!.pid, adopted: false },
    probe: { ok: true, latencyMs: 12, nixVersion: '2.24.9', error: null },
    restarts: 0,
  });
  t.same(h.store.record, h.backend.current!.handle.record, 'the VM record is saved for adoption');
  t.same(statesSeen(h.events), ['starting', 'running']);
  t.match(h.specsBuilt, [{ adopting: false }]);
});

t.test('status carries every field the API serves', async (t) => {
  const h = await running();
  t.same(Object.keys(h.sup.status()).sort(), [
    'accel',
    'arch',
    'backend',
    'backendReason',
    'backoff',
    'configPath',
    'daemon',
    'desired',
    'errors',
    'failedReason',
    'healthy',
    'image',
    'lastExit',
    'mode',
    'onDemand',
    'probe',
    'restarts',
    'ssh',
    'state',
    'stateDir',
    'vm',
  ]);
  t.match(h.sup.status(), {
    backend: 'qemu',
    backendReason: 'auto: Linux host',
    accel: 'tcg',
    arch: 'x86_64',
    ssh: { host: '127.0.0.1', port: 31022 },
    backoff: null,
    failedReason: null,
    lastExit: null,
    configPath: '/state/config.json',
    stateDir: '/state',
    errors: [],
    daemon: { pid: 99, version: '0.1.0', startedAt: '2025-01-01T00:00:00.000Z' },
    probe: { at: '2025-01-01T00:00:00.000Z' },
  });
  t.same(await h.sup.logs('console', 5), ['console 5'], 'logs come from the injected reader');
});

t.test('a crash is restarted after the backoff delay and counted in restarts', async (t) => {
  const h = await running();
  const first = h.backend.current!;
  first.exit(1);
  await settle();
  t.match(h.sup.status(), {
    state: 'backoff',
    healthy: false,
    vm: { pid: null },
    lastExit: { code: 1, reason: 'exited with code 1' },
    backoff: { attempt: 2, nextStartAt: '2025-01-01T00:00:01.000Z' },
  });
  t.equal(h.store.record, null, 'the record of the dead VM is cleared');
  await h.clock.advance(999);
  t.equal(h.backend.started.length, 1, 'no start before the delay is over');
  await h.clock.advance(1);
  t.equal(h.backend.started.length, 2);
  t.match(h.sup.status(), { state: 'running', restarts: 1 });
  t.not(h.backend.current!.pid, first.pid);
});

t.test(
  'repeated boot failures back off longer each time, then fail with the reason and start no more',
  async (t) => {
    const h = harness();
    h.backend.onStart = (vm) => queueMicrotask(() => vm.exit(1, { reason: 'qemu: could not load kernel' }));
    await h.sup.init();
    const delays: number[] = [];
    while (h.sup.status().state !== 'failed' && delays.length < 10) {
      await settle();
      const s = h.sup.status();
      if (s.state !== 'backoff') continue;
      const wait = Date.parse(s.backoff!.nextStartAt!) - h.clock.now();
      delays.push(wait);
      await h.clock.advance(wait);
    }
    t.same(delays, [1000, 2000, 4000], 'the wait doubles');
    const s = h.sup.status();
    t.equal(s.state, 'failed');
    t.equal(h.backend.started.length, 4, 'maxAttempts starts');
    t.match(s.failedReason, /^gave up after 4 failed starts in a row \(last: qemu: could not load kernel\)/);
    t.match(s.backoff, { attempt: 4, nextStartAt: null });
    await h.clock.advance(24 * 3600_000);
    t.equal(h.backend.started.length, 4, 'no more starts while failed, however long it waits');
    t.equal(h.sup.status().state, 'failed');
  },
);

async function failed(): Promise<Harness> {
  const h = harness();
  h.backend.onStart = (vm) => queueMicrotask(() => vm.exit(1));
  await h.sup.init();
  await h.clock.advance(60_000);
  return h;
}

t.test('an explicit start from failed tries again', async (t) => {
  const h = await failed();
  t.equal(h.sup.status().state, 'failed');
  h.backend.onStart = null;
  const accepted = await h.sup.start();
  t.equal(accepted.state, 'starting', 'the answer already shows the new start');
  await settle();
  t.equal(h.backend.started.length, 5);
  t.match(h.sup.status(), { state: 'running', failedReason: null, backoff: null });
});

t.test('a config change while failed tries again', async (t) => {
  const h = await failed();
  h.backend.onStart = null;
  h.sup.configChanged({ needsRestart: false, keys: ['memoryMiB'] });
  await settle();
  t.equal(h.backend.started.length, 5);
  t.equal(h.sup.status().state, 'running');
  t.match(
    h.events.find((e) => e.type === 'config'),
    { message: 'config changed (memoryMiB)', keys: ['memoryMiB'] },
  );
});

t.test('a guest reboot restarts the VM at once and is not counted as a crash', async (t) => {
  const h = await running();
  h.backend.current!.exit(2, { reboot: true, reason: 'guest rebooted' });
  await settle();
  t.equal(h.backend.started.length, 2, 'started again without any clock advance');
  t.match(h.sup.status(), { state: 'running', restarts: 0, lastExit: { code: 2, reason: 'guest rebooted' } });
  t.notOk(statesSeen(h.events).includes('backoff'), 'no backoff');
});

t.test(
  'a guest that reboots at every boot before answering ends in failed instead of spinning',
  async (t) => {
    const h = harness();
    h.probe.healthy = false;
    h.backend.onStart = (vm) => queueMicrotask(() => vm.exit(2, { reboot: true, reason: 'guest rebooted' }));
    await h.sup.init();
    await h.clock.advance(60_000);
    t.equal(h.sup.status().state, 'failed');
    t.equal(h.backend.started.length, 4);
    t.match(h.sup.status().failedReason, /\(last: guest rebooted\)/);
  },
);

t.test('stop powers the VM off with the policy grace and ends stopped', async (t) => {
  const h = await running();
  let release!: () => void;
  h.backend.stopGate = new Promise((r) => (release = r));
  const accepted = await h.sup.stop();
  t.match(accepted, { state: 'stopping', desired: 'stopped' });
  t.same(h.backend.stops, [{ pid: h.backend.vms[0]!.pid, opts: { graceMs: 15_000 } }]);
  t.equal(h.store.desired, 'stopped', 'the desired state is saved');

  t.same(await h.sup.stop(), { ...h.sup.status() }, 'a second stop is answered at once');
  t.equal(h.sup.status().state, 'stopping', 'and the stop goes on');
  t.equal(h.backend.stops.length, 1, 'one stop');

  release();
  await settle();
  t.match(h.sup.status(), { state: 'stopped', vm: { pid: null }, lastExit: { code: 0 }, healthy: false });
  t.equal(h.store.record, null, 'the record is cleared after the clean exit');
  t.equal(h.backend.started.length, 1, 'nothing restarts a VM stopped on request');
  t.same(statesSeen(h.events), ['starting', 'running', 'stopping', 'stopped']);
  await h.clock.advance(3600_000);
  t.equal(h.backend.started.length, 1);
});

t.test('stop is idempotent', async (t) => {
  const h = await running();
  await h.sup.stop();
  await settle();
  const again = await h.sup.stop();
  t.equal(again.state, 'stopped');
  t.equal(h.backend.stops.length, 1);
});

t.test('restart while booting returns 409 and keeps the VM', async (t) => {
  const h = harness();
  h.probe.healthy = false;
  await h.sup.init();
  await settle();
  t.equal(h.sup.status().state, 'starting');
  await t.rejects(h.sup.restart(), ConflictError);
  await settle();
  t.equal(h.backend.stops.length, 0);
  t.equal(h.sup.status().vm.pid, h.backend.current!.pid);
});

t.test('restart of a running VM replaces it without counting a restart', async (t) => {
  const h = await running();
  const old = h.backend.current!;
  const accepted = await h.sup.restart();
  t.equal(accepted.state, 'stopping');
  await settle();
  t.equal(h.backend.stops.length, 1);
  t.ok(old.exitedWith, 'the old VM is gone');
  t.equal(h.backend.started.length, 2);
  t.match(h.sup.status(), { state: 'running', restarts: 0, vm: { pid: h.backend.current!.pid } });
  t.same(h.store.record, h.backend.current!.handle.record, 'the record names the new VM');
});

t.test('restart of a stopped builder starts it', async (t) => {
  const h = harness();
  h.store.desired = 'stopped';
  await h.sup.init();
  t.equal(h.backend.started.length, 0, 'the saved desired state is kept across daemons');
  t.equal(h.sup.status().state, 'stopped');
  await h.sup.restart();
  await settle();
  t.match(h.sup.status(), { state: 'running', desired: 'running' });
  t.equal(h.store.desired, 'running');
});

t.test('a config change that needs a new VM replaces the running one', async (t) => {
  const h = await running();
  h.sup.configChanged({ needsRestart: true, keys: ['cpus'] });
  await settle();
  t.equal(h.backend.stops.length, 1);
  t.equal(h.backend.started.length, 2);
  t.match(h.sup.status(), { state: 'running', restarts: 0 });
});

t.test('a config change that needs no new VM leaves the running one alone', async (t) => {
  const h = await running();
  h.sup.configChanged({ needsRestart: false, keys: ['speedFactor'] });
  await settle();
  t.equal(h.backend.stops.length, 0);
  t.equal(h.backend.started.length, 1);
});

t.test(
  'a VM that never answers is degraded after the boot grace and restarted after the limit',
  async (t) => {
    const h = harness();
    h.probe.healthy = false;
    await h.sup.init();
    await h.clock.advance(29_000);
    t.match(h.sup.status(), { state: 'starting', probe: { ok: false, error: 'ssh: connection refused' } });
    await h.clock.advance(2000);
    t.equal(h.sup.status().state, 'degraded');
    await h.clock.advance(60_000);
    t.equal(h.backend.stops.length, 1, 'the stuck VM was stopped');
    t.equal(h.backend.stops[0]!.opts.graceMs, 15_000);
    t.match(h.sup.status(), { restarts: 1 });
    h.probe.healthy = true;
    await h.clock.advance(2000);
    t.equal(h.backend.started.length, 2);
    t.equal(h.sup.status().state, 'running');
  },
);

t.test('the probe runs on its timer while the VM is up and never while it is down', async (t) => {
  const h = await running();
  const before = h.probe.calls;
  await h.clock.advance(50_000);
  t.equal(h.probe.calls - before, 5, 'one probe per interval while healthy');
  await h.sup.stop();
  await settle();
  const stopped = h.probe.calls;
  await h.clock.advance(3600_000);
  t.equal(h.probe.calls, stopped);
});

t.test(
  'a healthy VM whose probe starts failing is degraded, and running again when it answers',
  async (t) => {
    const h = await running();
    h.probe.healthy = false;
    await h.clock.advance(10_000);
    t.match(h.sup.status(), { state: 'degraded', healthy: false, probe: { ok: false } });
    h.probe.healthy = true;
    await h.clock.advance(1000);
    t.match(h.sup.status(), { state: 'running', healthy: true });
    t.equal(h.backend.stops.length, 0);
    t.same(
      h.events.filter((e) => e.type === 'probe').map((e) => e.ok),
      [true, false, true],
      'a probe event only when the result changes',
    );
  },
);

t.test(
  'while healthy, SSH checks fill the gaps between Nix probes; a guest that stops answering is degraded and replaced',
  async (t) => {
    const h = await running();
    await h.clock.advance(60_000);
    // testPolicy: a probe every 10 s, Nix every 60 s.
    t.same(h.probe.checks, ['nix', 'ssh', 'ssh', 'ssh', 'ssh', 'ssh', 'nix']);
    await h.clock.advance(10_000);
    t.match(h.sup.status(), {
      state: 'running',
      probe: { ok: true, check: 'ssh', latencyMs: 12, sshLatencyMs: 2, nixVersion: '2.24.9' },
    });
    // Hung: neither check answers any more.
    h.probe.healthy = false;
    await h.clock.advance(10_000);
    t.match(h.sup.status(), { state: 'degraded', probe: { ok: false, check: 'ssh' } });
    t.equal(h.probe.checks.at(-1), 'ssh', 'found by the SSH check, not left for the next Nix probe');
    await h.clock.advance(60_000);
    t.equal(h.backend.stops.length, 1, 'replaced after degradedRestartMs');
    t.match(h.sup.status(), { restarts: 1 });
  },
);

t.test("status reports the boot's time to ready apart from the probe's own latency", async (t) => {
  const h = harness();
  h.probe.healthy = false;
  await h.sup.init();
  await h.clock.advance(5000);
  t.match(h.sup.status().vm, { readyAt: null, bootToReadyMs: null });
  h.probe.healthy = true;
  await h.clock.advance(1000);
  const s = h.sup.status();
  t.equal(s.state, 'running');
  t.ok(
    s.vm.bootToReadyMs! >= 5000 && s.vm.bootToReadyMs! <= 6000,
    `ready ${s.vm.bootToReadyMs} ms after the VM started`,
  );
  t.equal(Date.parse(s.vm.readyAt!) - Date.parse(s.vm.startedAt!), s.vm.bootToReadyMs);
  t.equal(s.probe.latencyMs, 12, "the probe's latency is its own, not the boot's");
  t.match(
    h.events.find((e) => e.type === 'probe' && e.ok === true)?.message,
    /^probe ok: Nix 2\.24\.9 answered in 12 ms; ready \d+ ms after the VM started$/,
  );
});

t.test('adopts a recorded VM on init without starting a new one', async (t) => {
  const h = harness();
  const record = {
    backend: 'qemu' as const,
    pid: 1234,
    executable: '/usr/bin/qemu-system-x86_64',
    argv: ['qemu-system-x86_64'],
    processStartTime: '123',
    startedAt: '2024-12-31T20:00:00.000Z',
    sshPort: 31022,
    stateDir: '/state',
    consoleLog: '/state/console/boot.log',
  };
  h.store.record = record;
  h.backend.adoptable = record;
  await h.sup.init();
  await settle();
  t.equal(h.backend.started.length, 0, 'no start');
  t.match(h.sup.status(), {
    state: 'running',
    vm: { pid: 1234, adopted: true, startedAt: '2024-12-31T20:00:00.000Z' },
  });
  t.same(h.specsBuilt, [], 'adoption needs only the record: no spec, no image');
  t.match(h.events[0], { type: 'adopted', pid: 1234 });
  t.same(statesSeen(h.events), ['running'], 'its state comes from the probe: straight to running');
  t.same(h.store.record, record, 'the record stays');

  h.backend.current!.exit(null, { signal: 'SIGKILL', reason: 'killed by SIGKILL' });
  await settle();
  t.match(h.sup.status(), { state: 'backoff', lastExit: { signal: 'SIGKILL' } });
});

t.test('a recorded VM that cannot be adopted is cleaned up and a fresh one started', async (t) => {
  const h = harness();
  const stale = {
    backend: 'qemu' as const,
    pid: 777,
    executable: '/usr/bin/qemu-system-x86_64',
    argv: [],
    processStartTime: '1',
    startedAt: '2024-12-31T20:00:00.000Z',
    sshPort: 31022,
    stateDir: '/state',
    consoleLog: '/state/console/boot.log',
  };
  h.store.record = stale;
  await h.sup.init();
  await settle();
  t.same(h.backend.adopted, [stale], 'adoption was tried');
  t.ok(h.backend.prepared.length >= 1, 'prepare cleared the stale files');
  t.equal(h.store.recordWrites[0], null, 'the stale record was cleared first');
  t.equal(h.backend.started.length, 1);
  t.match(h.sup.status(), { state: 'running', vm: { adopted: false } });
  t.same(h.store.record, h.backend.current!.handle.record);
});

t.test('shutdown without stopping leaves the VM running and keeps its record', async (t) => {
  const h = await running();
  const vm = h.backend.current!;
  await h.sup.shutdown({ stopVm: false });
  t.equal(h.backend.stops.length, 0);
  t.equal(vm.exitedWith, null, 'the VM still runs');
  t.same(h.store.record, vm.handle.record, 'the record is there for the next daemon');
  await h.clock.advance(3600_000);
  t.equal(h.backend.started.length, 1, 'the loop is over: nothing else happens');
  await t.rejects(h.sup.start(), ConflictError);
});

t.test('shutdown with stopVm powers the VM off and clears the record', async (t) => {
  const h = await running();
  await h.sup.shutdown({ stopVm: true });
  t.same(
    h.backend.stops.map((s) => s.opts),
    [{ graceMs: 15_000 }],
  );
  t.equal(h.store.record, null);
  t.equal(h.backend.current, undefined);
});

t.test('shutdown waits for a stop in progress before it returns', async (t) => {
  const h = await running();
  let release!: () => void;
  h.backend.stopGate = new Promise((r) => (release = r));
  await h.sup.stop();
  let done = false;
  const closing = h.sup.shutdown({ stopVm: true }).then(() => (done = true));
  await settle();
  t.equal(done, false);
  release();
  await closing;
  t.equal(h.backend.stops.length, 1, 'one stop, not two');
  t.equal(h.store.record, null);
});

t.test('a start that throws counts as a failed start and backs off', async (t) => {
  const h = harness();
  h.backend.startError = new Error('qemu-system-x86_64: not found');
  await h.sup.init();
  await settle();
  t.match(h.sup.status(), {
    state: 'backoff',
    lastExit: { code: null, reason: 'could not start the VM: qemu-system-x86_64: not found' },
  });
  h.backend.startError = null;
  await h.clock.advance(1000);
  t.match(h.sup.status(), { state: 'running', restarts: 1 });
});

t.test('a stop that fails is tried again later instead of in a tight loop', async (t) => {
  const h = await running();
  const realStop = h.backend.stop.bind(h.backend);
  let failures = 0;
  h.backend.stop = async (handle, opts) => {
    if (failures++ < 1) throw new Error('QMP socket gone');
    return realStop(handle, opts);
  };
  await h.sup.stop();
  await settle();
  t.equal(failures, 1, 'one failed try, no spin');
  t.equal(h.sup.status().state, 'stopping');
  await h.clock.advance(15_000);
  t.equal(h.sup.status().state, 'stopped');
});

t.test('reportError lists a problem in the status until it is cleared', async (t) => {
  const h = await running();
  h.sup.reportError('config', 'cpus: must be >= 1, got 0');
  h.sup.reportError('config', 'cpus: must be >= 1, got 0');
  t.same(h.sup.status().errors, [
    { source: 'config', message: 'cpus: must be >= 1, got 0', at: '2025-01-01T00:00:00.000Z' },
  ]);
  t.equal(h.events.filter((e) => e.type === 'error').length, 1, 'the same error is announced once');
  h.sup.clearError('config');
  t.same(h.sup.status().errors, []);
});

t.test('waitForState resolves on the change and times out on the injected clock', async (t) => {
  const h = harness();
  h.probe.healthy = false;
  await h.sup.init();
  const healthy = h.sup.waitForState((s) => s.healthy, 60_000);
  const never = t.rejects(
    h.sup.waitForState((s) => s.state === 'failed', 5000),
    /timed out after 5000 ms waiting for the builder; it is running/,
  );
  h.probe.healthy = true;
  await h.clock.advance(1000);
  t.match(await healthy, { state: 'running' });
  await h.clock.advance(5000);
  await never;
});

t.test('a healthy run of the stable period resets the backoff', async (t) => {
  const h = await running();
  h.backend.current!.exit(1);
  await h.clock.advance(1000);
  h.backend.current!.exit(1);
  await settle();
  t.match(h.sup.status().backoff, { attempt: 3 }, 'two failures so far');
  await h.clock.advance(2000);
  t.equal(h.sup.status().state, 'running');
  await h.clock.advance(60_000);
  h.backend.current!.exit(1);
  await settle();
  t.match(h.sup.status(), { state: 'backoff', backoff: { attempt: 2 }, restarts: 2 });
});
