// On-demand mode in the supervisor, against the FakeBackend and a FakeEndpoint that counts
// connections as the test says: asleep until a connection, one VM however many come, held
// connections go through once the probe answers, the idle stop after the idle time and not
// while a connection is open, and a builder that cannot start closes what it holds without
// booting again and again.
import t from 'tap';
import type { ConnectionCounts, DemandSettings } from '../../daemon/on-demand/demand.js';
import type { DemandEndpoint } from '../../daemon/supervisor/types.js';
import { harness, settle, statesSeen, type Harness } from './fakes.js';

const IDLE_MS = 60_000;

class FakeEndpoint implements DemandEndpoint {
  held = 0;
  open = 0;
  lastActivityAt: number | null = null;
  readyPort: number | null = null;
  readonly failures: string[] = [];
  /** Like the real endpoint's listener: closed connections are reported back. */
  reportClosed: (n: number, reason: string) => void = () => undefined;
  counts(): ConnectionCounts {
    return { held: this.held, open: this.open, lastActivityAt: this.lastActivityAt };
  }
  ready(port: number | null): void {
    this.readyPort = port;
    // Like the real endpoint: held connections are forwarded at once.
    if (port !== null && this.held > 0) {
      this.open += this.held;
      this.held = 0;
    }
  }
  failHeld(reason: string): number {
    const n = this.held;
    this.held = 0;
    if (n > 0) {
      this.failures.push(reason);
      this.reportClosed(n, reason);
    }
    return n;
  }
}

async function onDemand(
  settings: Partial<DemandSettings> = {},
): Promise<Harness & { endpoint: FakeEndpoint }> {
  const demand: DemandSettings = { mode: 'on-demand', idleStopAfterMs: IDLE_MS, ...settings };
  const h = harness({ demand: () => demand });
  const endpoint = new FakeEndpoint();
  endpoint.reportClosed = (n, reason) => h.sup.heldConnectionsClosed(n, reason);
  h.sup.setEndpoint(endpoint);
  await h.sup.init();
  await settle();
  return { ...h, endpoint };
}

/** A client connects: the endpoint holds it (no VM is ready) and tells the supervisor. */
async function connect(h: Harness & { endpoint: FakeEndpoint }, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (h.endpoint.readyPort === null) h.endpoint.held++;
    else h.endpoint.open++;
    h.endpoint.lastActivityAt = h.clock.now();
    h.sup.connectionArrived(`a connection from 127.0.0.1:${50000 + i}`);
  }
  await settle();
}

async function disconnectAll(h: Harness & { endpoint: FakeEndpoint }): Promise<void> {
  h.endpoint.open = 0;
  h.endpoint.lastActivityAt = h.clock.now();
  h.sup.connectionsChanged();
  await settle();
}

t.test('asleep at start: no VM until a connection comes', async (t) => {
  const h = await onDemand();
  t.equal(h.backend.started.length, 0, 'no VM started');
  t.match(h.sup.status(), {
    state: 'stopped',
    desired: 'running',
    mode: 'on-demand',
    onDemand: { awake: false, heldConnections: 0, openConnections: 0, idleStopAfterMs: IDLE_MS },
  });
  await h.clock.advance(10 * IDLE_MS);
  t.equal(h.backend.started.length, 0, 'still none after a long while');
});

t.test('five connections at once wake one VM and go through once the probe answers', async (t) => {
  const h = await onDemand();
  await connect(h, 5);
  t.equal(h.backend.started.length, 1, 'exactly one VM started');
  t.equal(h.endpoint.readyPort, 31022, 'the held connections were forwarded to the VM port');
  t.equal(h.endpoint.open, 5, 'all five forwarded');
  const wakes = h.events.filter((e) => e.type === 'wake');
  t.equal(wakes.length, 1, 'one wake event');
  t.match(wakes[0], { by: 'a connection from 127.0.0.1:50000' });
  t.match(h.sup.status(), {
    state: 'running',
    onDemand: { awake: true, openConnections: 5, idleStopAt: null },
  });
});

t.test('idle stop comes after the idle time with no connection, and not before', async (t) => {
  const h = await onDemand();
  await connect(h);
  await h.clock.advance(5 * IDLE_MS); // a long build: the open connection keeps the VM up
  t.equal(h.backend.stops.length, 0, 'never stopped while a connection is open');
  await disconnectAll(h);
  const closedAt = h.clock.now();
  t.equal(h.sup.status().onDemand?.idleStopAt, new Date(closedAt + IDLE_MS).toISOString());
  await h.clock.advance(IDLE_MS - 1000);
  t.equal(h.backend.stops.length, 0, 'not stopped before the idle time');
  await h.clock.advance(2000);
  t.equal(h.backend.stops.length, 1, 'stopped once idle');
  t.equal(h.events.filter((e) => e.type === 'idle-stop').length, 1, 'one idle-stop event');
  t.match(h.sup.status(), { state: 'stopped', desired: 'running', onDemand: { awake: false } });
  t.equal(h.endpoint.readyPort, null, 'new connections are held again');
  await connect(h);
  t.equal(h.backend.started.length, 2, 'the next connection wakes it again');
  t.equal(h.sup.status().state, 'running');
});

t.test('a connection during the idle window moves the idle stop', async (t) => {
  const h = await onDemand();
  await connect(h);
  await disconnectAll(h);
  await h.clock.advance(IDLE_MS / 2);
  await connect(h);
  await disconnectAll(h);
  await h.clock.advance(IDLE_MS - 1000);
  t.equal(h.backend.stops.length, 0, 'the second connection restarted the idle time');
  await h.clock.advance(2000);
  t.equal(h.backend.stops.length, 1);
});

t.test(
  'a builder that cannot start closes the held connections with the reason and does not loop',
  async (t) => {
    const h = await onDemand();
    h.backend.startError = new Error('kernel /nope not found');
    await connect(h, 3);
    await h.clock.advance(10 * 60_000);
    const starts = h.backend.started.length;
    t.equal(
      starts,
      h.policy.maxAttempts,
      `tried ${h.policy.maxAttempts} times (the restart policy), then gave up`,
    );
    t.equal(h.endpoint.held, 0, 'the held connections were closed');
    t.match(h.endpoint.failures, [/gave up after 4 failed starts.*kernel \/nope not found/]);
    t.match(h.sup.status(), {
      state: 'failed',
      onDemand: { awake: false, lastFailure: { reason: /kernel \/nope not found/ } },
    });
    t.ok(
      h.events.some((e) => e.type === 'wake-failed'),
      'a wake-failed event',
    );
    await connect(h);
    await h.clock.advance(60_000);
    t.equal(h.backend.started.length, starts, 'a new connection to a failed builder starts nothing');
    t.equal(h.endpoint.held, 0, 'and is closed at once');
    h.backend.startError = null;
    await h.sup.start();
    await settle();
    t.equal(h.sup.status().state, 'running', 'linuxkitctl start tries again');
  },
);

t.test('stop: off and not woken; start wakes it and the idle time applies again', async (t) => {
  const h = await onDemand();
  await connect(h);
  await disconnectAll(h);
  await h.sup.stop();
  await settle();
  t.equal(h.sup.status().state, 'stopped');
  await connect(h);
  t.equal(h.backend.started.length, 1, 'a connection does not wake a stopped builder');
  t.match(h.endpoint.failures, [/stopped/], 'it is closed, saying the builder is stopped');
  await h.sup.start();
  await settle();
  t.equal(h.backend.started.length, 2, 'start wakes it');
  t.match(h.sup.status().onDemand, { awake: true, wokenBy: 'a start request' });
  await h.clock.advance(IDLE_MS + 1000);
  t.equal(h.sup.status().state, 'stopped', 'and the idle stop applies after it');
  t.same(statesSeen(h.events).slice(-2), ['stopping', 'stopped']);
});
