// The typed client scripts import, against a real API server on a temporary socket.
import { createServer } from 'node:net';
import t from 'tap';
import {
  ApiError,
  DaemonUnreachableError,
  LinuxkitClient,
  type StateEvent,
} from '../../client/api-client.js';
import { ConflictError, FakeController } from '../api/fixtures/fake-controller.js';
import { startApi, tempSocketPath, until } from './fixtures/harness.js';

t.test('each method returns the typed answer of its route', async (t) => {
  const fake = new FakeController();
  fake.logLines.console = ['a', 'b', 'c'];
  const client = new LinuxkitClient({ socketPath: await startApi(t, fake) });
  t.same(await client.status(), fake.current);
  t.same(await client.start(), { accepted: true, status: fake.current });
  t.same(await client.stop(), { accepted: true, status: fake.current });
  t.same(await client.restart(), { accepted: true, status: fake.current });
  t.same(await client.health(), { healthy: true, state: 'running' });
  t.same(await client.logs({ source: 'console', lines: 2 }), { source: 'console', lines: ['b', 'c'] });
  t.same(fake.calls, ['status', 'start', 'stop', 'restart', 'status', 'logs console:2']);
});

t.test('health of an unhealthy builder resolves (503 is an answer, not an error)', async (t) => {
  const fake = new FakeController({ state: 'failed', healthy: false, failedReason: 'crash loop' });
  const client = new LinuxkitClient({ socketPath: await startApi(t, fake) });
  t.same(await client.health(), { healthy: false, state: 'failed', reason: 'failed: crash loop' });
});

t.test('an error answer becomes an ApiError with status, code and message', async (t) => {
  const fake = new FakeController();
  fake.failWith('restart', new ConflictError('already restarting'));
  const client = new LinuxkitClient({ socketPath: await startApi(t, fake) });
  const err = await client.restart().catch((e: unknown) => e);
  t.ok(err instanceof ApiError);
  t.match(err, { status: 409, error: 'conflict', message: 'already restarting' });
  const bad = await client.logs({ lines: 20000 }).catch((e: unknown) => e);
  t.match(bad, { status: 400, error: 'bad_request', message: 'querystring/lines must be <= 10000' });
});

t.test('a missing socket is DaemonUnreachableError ENOENT naming the path', async (t) => {
  const socketPath = tempSocketPath(t);
  const err = await new LinuxkitClient({ socketPath }).status().catch((e: unknown) => e);
  t.ok(err instanceof DaemonUnreachableError);
  t.match(err, {
    code: 'ENOENT',
    socketPath,
    message: new RegExp(`^linuxkitd is not reachable at ${socketPath}: no socket there`),
  });
});

t.test('a daemon that accepts but never answers is DaemonUnreachableError after the timeout', async (t) => {
  const socketPath = tempSocketPath(t);
  const silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(socketPath, resolve));
  t.teardown(() => {
    silent.close();
  });
  const err = await new LinuxkitClient({ socketPath, timeoutMs: 200 }).status().catch((e: unknown) => e);
  t.ok(err instanceof DaemonUnreachableError);
  t.match(err, {
    code: 'ETIMEDOUT',
    message: `linuxkitd is not reachable at ${socketPath}: no answer within 200 ms`,
  });
});

t.test('events delivers the snapshot then each event, and close() ends it without a trace', async (t) => {
  const fake = new FakeController();
  const client = new LinuxkitClient({ socketPath: await startApi(t, fake) });
  const seen: StateEvent[] = [];
  const sub = client.events((e) => seen.push(e));
  await until(() => seen.length === 1, 'the snapshot');
  t.match(seen[0], { type: 'state', initial: true, state: 'running' });
  fake.emit({ at: '2025-01-01T00:00:00.000Z', type: 'probe', message: 'probe ok in 600 ms', latencyMs: 600 });
  await until(() => seen.length === 2, 'the probe event');
  t.same(seen[1], {
    at: '2025-01-01T00:00:00.000Z',
    type: 'probe',
    message: 'probe ok in 600 ms',
    latencyMs: 600,
  });
  sub.close();
  await sub.done;
  await until(() => fake.listenerCount() === 0, 'the server to drop the listener');
  t.equal(fake.listenerCount(), 0);
});

t.test('events on a missing socket rejects done with DaemonUnreachableError', async (t) => {
  const sub = new LinuxkitClient({ socketPath: tempSocketPath(t) }).events(() => {});
  await t.rejects(sub.done, DaemonUnreachableError);
});
