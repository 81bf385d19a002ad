// Slow work runs beside the loop: a start whose image build or prepare hangs, or a stop that
// waits out its grace, never holds up a request, a VM exit or a config change. Fake time, a
// FakeBackend with gates the test opens by hand.
import t from 'tap';
import { freshStepMemory, type StepMemory } from '../../daemon/reconciler/types.js';
import { gate, harness, settle, statesSeen, type Harness } from './fakes.js';

async function running(): Promise<Harness> {
  const h = harness();
  await h.sup.init();
  await settle();
  return h;
}

t.test(
  'a start whose prepare hangs does not block a stop request; the start ends without a VM',
  async (t) => {
    const h = harness();
    const prepare = gate();
    h.backend.prepareGate = prepare.promise;
    await h.sup.init();
    await settle();
    t.match(h.sup.status(), { state: 'starting', vm: { pid: null } }, 'starting, and status answers');
    t.equal(h.backend.prepared.length, 1, 'prepare is running');

    const accepted = await h.sup.stop();
    t.match(accepted, { state: 'stopping', desired: 'stopped' }, 'the stop is accepted at once');
    t.equal(h.specsBuilt[0]!.signal?.aborted, true, 'the spec builder is told the start was cancelled');
    await h.clock.advance(60_000);
    t.equal(h.sup.status().state, 'stopping', 'stopping until the cancelled start has ended');

    prepare.open();
    await settle();
    t.equal(h.backend.started.length, 0, 'no hypervisor spawned after the cancel');
    t.match(h.sup.status(), { state: 'stopped', vm: { pid: null } });
    t.same(statesSeen(h.events), ['starting', 'stopping', 'stopped']);
    t.ok(h.logged.includes('info: cancelling the start in progress'), 'the cancel is logged');
  },
);

t.test(
  'an image build that throws on the cancel ends the start as cancelled, not as a failed start',
  async (t) => {
    const h = harness();
    const build = gate();
    h.specGate.promise = build.promise;
    h.specGate.throwWhenAborted = true;
    await h.sup.init();
    await settle();
    await h.sup.stop();
    build.open();
    await settle();
    t.match(h.sup.status(), { state: 'stopped', vm: { pid: null } }, 'stopped, not backoff');
    t.equal(h.backend.started.length, 0, 'no hypervisor spawned');
    t.notOk(
      h.logged.some((l) => l.startsWith('error:') || /start failed/.test(l)),
      `no failure logged: ${h.logged.join(' | ')}`,
    );
  },
);

t.test('a start whose image build hangs: start again after a stop waits for it, then starts', async (t) => {
  const h = harness();
  const build = gate();
  h.specGate.promise = build.promise;
  await h.sup.init();
  await settle();
  await h.sup.stop();
  const again = await h.sup.start();
  t.match(again, { state: 'starting', desired: 'running' }, 'start accepted at once too');
  build.open();
  h.specGate.promise = null;
  await settle();
  t.equal(h.backend.started.length, 1, 'one VM, from the start after the cancelled one');
  t.equal(h.specsBuilt.length, 2, 'the cancelled start built its spec; the new one built another');
  t.equal(h.sup.status().state, 'running');
});

t.test('a config change during a hanging prepare is acted on: the VM it launches is replaced', async (t) => {
  const h = harness();
  const prepare = gate();
  h.backend.prepareGate = prepare.promise;
  await h.sup.init();
  await settle();
  h.sup.configChanged({ needsRestart: true, keys: ['memoryMiB'] });
  await settle();
  t.match(
    h.events.find((e) => e.type === 'config'),
    { keys: ['memoryMiB'], needsRestart: true },
    'seen at once',
  );
  t.equal(h.sup.status().state, 'starting');
  h.backend.prepareGate = null;
  prepare.open();
  await settle();
  t.equal(h.backend.stops.length, 1, 'the VM built from the old config was stopped');
  t.equal(h.backend.started.length, 2, 'and one from the new config started');
  t.equal(h.sup.status().state, 'running');
});

t.test('a restart during a hanging start is accepted and starts nothing twice', async (t) => {
  const h = harness();
  const prepare = gate();
  h.backend.prepareGate = prepare.promise;
  await h.sup.init();
  await settle();
  const accepted = await h.sup.restart();
  t.equal(accepted.state, 'starting');
  h.backend.prepareGate = null;
  prepare.open();
  await settle();
  t.equal(h.backend.started.length, 1);
  t.equal(h.sup.status().state, 'running');
});

t.test('during a stop that waits out its grace, a VM exit is acted on at once', async (t) => {
  const h = await running();
  const stop = gate();
  h.backend.stopGate = stop.promise;
  await h.sup.stop();
  const restarted = await h.sup.start();
  t.match(restarted, { state: 'stopping', desired: 'running' }, 'start during the stop is accepted');
  h.backend.current!.exit(null, { signal: 'SIGKILL', reason: 'killed by SIGKILL' });
  await settle();
  t.equal(h.backend.started.length, 2, 'a new VM without waiting for the stop to return');
  t.equal(h.sup.status().state, 'running');
  stop.open();
  await settle();
  t.equal(h.backend.started.length, 2, 'the late end of the stop changes nothing');
  t.equal(h.sup.status().state, 'running');
});

t.test('during a stop that waits out its grace, a config change is seen and status answers', async (t) => {
  const h = await running();
  const stop = gate();
  h.backend.stopGate = stop.promise;
  await h.sup.stop();
  h.sup.configChanged({ needsRestart: false, keys: ['stopGraceMs'] });
  await h.clock.advance(5000);
  t.ok(
    h.events.some((e) => e.type === 'config'),
    'the config change is an event at once',
  );
  t.equal(h.sup.status().state, 'stopping');
  t.equal(h.backend.stops.length, 1, 'no second stop while the first runs');
  stop.open();
  await settle();
  t.equal(h.sup.status().state, 'stopped');
});

t.test(
  'shutdown during a hanging image build returns without waiting for it, and no VM follows',
  async (t) => {
    const h = harness();
    const build = gate();
    h.specGate.promise = build.promise;
    await h.sup.init();
    await settle();
    await h.sup.shutdown({ stopVm: true });
    build.open();
    await settle();
    t.equal(h.backend.started.length, 0);
  },
);

t.test('the step memory is saved after each change and read back by the next daemon', async (t) => {
  const h = harness();
  h.backend.onStart = (vm) => queueMicrotask(() => vm.exit(1, { reason: 'qemu: could not load kernel' }));
  await h.sup.init();
  await h.clock.advance(60_000);
  t.equal(h.sup.status().state, 'failed');
  const saved = h.store.memory!;
  t.match(saved, { state: 'failed', consecutiveFailures: 4, failedReason: /^gave up after 4 failed starts/ });
  t.same(
    [...new Set(h.store.memoryWrites.map((m) => m.state))],
    ['starting', 'backoff', 'failed'],
    'written at each change',
  );
  const writes = h.store.memoryWrites.length;
  await h.clock.advance(3600_000);
  t.equal(h.store.memoryWrites.length, writes, 'nothing written while nothing changes');

  const next = harness();
  next.store.memory = saved;
  await next.sup.init();
  await next.clock.advance(3600_000);
  t.equal(next.backend.started.length, 0, 'the next daemon starts no VM');
  t.match(next.sup.status(), {
    state: 'failed',
    failedReason: saved.failedReason,
    lastExit: { reason: 'qemu: could not load kernel' },
    backoff: { attempt: 4, nextStartAt: null },
  });
});

t.test('a saved backoff is resumed with the same deadline', async (t) => {
  const h = harness();
  const now = h.clock.now();
  const memory: StepMemory = {
    ...freshStepMemory(now - 10_000),
    state: 'backoff',
    consecutiveFailures: 2,
    backoffUntil: now + 7000,
    lastExit: { at: now - 1000, code: 1, signal: null, reason: 'exited with code 1', kind: 'crash' },
  };
  h.store.memory = memory;
  await h.sup.init();
  t.match(h.sup.status(), {
    state: 'backoff',
    backoff: { attempt: 3, nextStartAt: new Date(now + 7000).toISOString() },
  });
  await h.clock.advance(6999);
  t.equal(h.backend.started.length, 0, 'not before the deadline');
  await h.clock.advance(1);
  t.equal(h.backend.started.length, 1, 'at the deadline');
  t.match(h.sup.status(), { state: 'running', restarts: 1 });
});

t.test('an unreadable memory is logged and replaced by a fresh one; the builder starts', async (t) => {
  const h = harness();
  h.store.memoryError = new Error('/state/step-memory.json: not JSON (Unexpected end of JSON input)');
  await h.sup.init();
  await settle();
  const line = h.logged.find((l) => l.includes('step memory is unreadable'));
  t.match(line, /^error: the saved step memory is unreadable \(\/state\/step-memory\.json: not JSON/);
  t.equal(h.sup.status().state, 'running');
  t.equal(h.store.memoryWrites[0]!.state, 'stopped', 'the fresh memory replaces the bad file at once');
});
