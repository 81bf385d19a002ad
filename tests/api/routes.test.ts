// Every route and every error path of the API, through app.inject() (no socket).
import { pino } from 'pino';
import t from 'tap';
import { buildApiServer } from '../../daemon/api/server.js';
import { ConflictError, FakeController, STOPPED_NO_VM } from './fixtures/fake-controller.js';

function setup(
  t: { teardown: (fn: () => unknown) => void },
  fake = new FakeController(),
  opts: { bodyLimit?: number } = {},
) {
  const app = buildApiServer(fake, { logger: false, ...opts });
  t.teardown(() => app.close());
  return { app, fake };
}

t.test('GET /v1/status answers the controller status with every field', async (t) => {
  const { app, fake } = setup(t);
  const res = await app.inject({ method: 'GET', url: '/v1/status' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json/);
  t.same(res.json(), fake.current);
});

for (const action of ['start', 'stop', 'restart'] as const) {
  t.test(`POST /v1/${action} with no body answers 202 with the status after acceptance`, async (t) => {
    const { app, fake } = setup(t);
    const res = await app.inject({ method: 'POST', url: `/v1/${action}` });
    t.equal(res.statusCode, 202);
    t.same(res.json(), { accepted: true, status: fake.current });
    t.same(fake.calls, [action]);
  });

  t.test(`POST /v1/${action} accepts {} and an empty JSON body`, async (t) => {
    const { app, fake } = setup(t);
    const withObject = await app.inject({ method: 'POST', url: `/v1/${action}`, payload: {} });
    t.equal(withObject.statusCode, 202);
    const emptyJson = await app.inject({
      method: 'POST',
      url: `/v1/${action}`,
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    t.equal(emptyJson.statusCode, 202);
    t.same(fake.calls, [action, action]);
  });

  t.test(`POST /v1/${action} answers 409 conflict when the controller refuses`, async (t) => {
    const fake = new FakeController();
    fake.failWith(action, new ConflictError(`cannot ${action} while stopping`));
    const { app } = setup(t, fake);
    const res = await app.inject({ method: 'POST', url: `/v1/${action}` });
    t.equal(res.statusCode, 409);
    t.same(res.json(), { error: 'conflict', message: `cannot ${action} while stopping` });
  });
}

t.test('restart while the VM is booting keeps the controller status in the 202 answer', async (t) => {
  const fake = new FakeController({ state: 'starting', healthy: false });
  const { app } = setup(t, fake);
  const res = await app.inject({ method: 'POST', url: '/v1/restart', payload: {} });
  t.equal(res.statusCode, 202);
  t.equal(res.json().status.state, 'starting');
});

t.test('disk reset while stopped removes the store disk: 200 with its path and size', async (t) => {
  const { app, fake } = setup(t, new FakeController(STOPPED_NO_VM));
  const res = await app.inject({ method: 'POST', url: '/v1/disk/reset', payload: {} });
  t.equal(res.statusCode, 200);
  t.same(res.json(), {
    path: '/var/lib/linuxkit-nix/nix-disk.raw',
    removedBytes: 2 * 1024 ** 3,
    status: fake.current,
  });
  const again = await app.inject({ method: 'POST', url: '/v1/disk/reset' });
  t.equal(again.statusCode, 200, 'no body is fine too');
  t.equal(again.json().removedBytes, null, 'no disk left: nothing removed, no error');
  t.same(fake.calls, ['resetDisk', 'resetDisk']);
});

t.test('disk reset while running is a 409 that says to stop first, and keeps the disk', async (t) => {
  const { app, fake } = setup(t);
  const res = await app.inject({ method: 'POST', url: '/v1/disk/reset' });
  t.equal(res.statusCode, 409);
  t.same(res.json(), {
    error: 'conflict',
    message:
      'the builder is running: the store disk is reset only while the builder is stopped ' +
      '(linuxkitctl stop, then linuxkitctl disk reset)',
  });
  t.equal(fake.diskBytes, 2 * 1024 ** 3, 'the disk is kept');
});

t.test('disk reset with a body field is a 400; GET is a 405', async (t) => {
  const { app, fake } = setup(t, new FakeController(STOPPED_NO_VM));
  const bad = await app.inject({ method: 'POST', url: '/v1/disk/reset', payload: { force: true } });
  t.equal(bad.statusCode, 400);
  const get = await app.inject({ method: 'GET', url: '/v1/disk/reset' });
  t.equal(get.statusCode, 405);
  t.equal(get.headers.allow, 'POST');
  t.same(fake.calls, []);
});

t.test('a body with an unknown field is a 400 naming the field', async (t) => {
  const { app, fake } = setup(t);
  const res = await app.inject({ method: 'POST', url: '/v1/stop', payload: { force: true } });
  t.equal(res.statusCode, 400);
  t.same(res.json(), { error: 'bad_request', message: 'body has an unknown property "force"' });
  t.same(fake.calls, [], 'the controller is not called');
});

t.test('broken JSON is a 400 that says the body is not valid JSON', async (t) => {
  const { app, fake } = setup(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/start',
    headers: { 'content-type': 'application/json' },
    payload: '{"oops',
  });
  t.equal(res.statusCode, 400);
  t.equal(res.json().error, 'bad_request');
  t.match(res.json().message, /^body is not valid JSON: /);
  t.same(fake.calls, []);
});

t.test('a body that sets __proto__ is a 400, not a poisoned object', async (t) => {
  const { app, fake } = setup(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/start',
    headers: { 'content-type': 'application/json' },
    payload: '{"__proto__": {"admin": true}}',
  });
  t.equal(res.statusCode, 400);
  t.same(res.json(), {
    error: 'bad_request',
    message: 'body must not contain "__proto__" or "constructor.prototype" keys',
  });
  t.same(fake.calls, []);
});

t.test('a malformed URL is a 400 in the same error shape', async (t) => {
  const { app } = setup(t);
  const res = await app.inject({ method: 'GET', url: '/v1/status%zz' });
  t.equal(res.statusCode, 400);
  t.same(res.json(), { error: 'bad_request', message: "'/v1/status%zz' is not a valid url component" });
});

t.test('a JSON body that is not an object is a 400 naming the body', async (t) => {
  const { app } = setup(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/start',
    headers: { 'content-type': 'application/json' },
    payload: '[1]',
  });
  t.equal(res.statusCode, 400);
  t.same(res.json(), { error: 'bad_request', message: 'body must be object' });
});

t.test('a body over the limit is a 413 that names the limit', async (t) => {
  const { app, fake } = setup(t, new FakeController(), { bodyLimit: 1024 });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/start',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ pad: 'x'.repeat(2048) }),
  });
  t.equal(res.statusCode, 413);
  t.equal(res.json().error, 'payload_too_large');
  t.match(res.json().message, /limit of 1024 bytes/);
  t.same(fake.calls, []);
});

t.test('the default body limit is 16 KiB', async (t) => {
  const { app } = setup(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/start',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ pad: 'x'.repeat(16 * 1024) }),
  });
  t.equal(res.statusCode, 413);
  t.match(res.json().message, /limit of 16384 bytes/);
});

t.test('a body that is not JSON is a 415 naming the content type', async (t) => {
  const { app, fake } = setup(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/restart',
    headers: { 'content-type': 'text/plain' },
    payload: 'please',
  });
  t.equal(res.statusCode, 415);
  t.same(res.json(), {
    error: 'unsupported_media_type',
    message: 'body must be application/json, not text/plain',
  });
  t.same(fake.calls, []);
});

t.test('GET /v1/health answers 200 with the state when healthy', async (t) => {
  const { app } = setup(t);
  const res = await app.inject({ method: 'GET', url: '/v1/health' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { healthy: true, state: 'running' });
});

t.test('GET /v1/health answers 503 with a reason when unhealthy', async (t) => {
  const fake = new FakeController({
    state: 'degraded',
    healthy: false,
    probe: {
      ok: false,
      check: 'ssh',
      latencyMs: null,
      sshLatencyMs: null,
      nixVersion: null,
      at: '2025-01-01T00:06:00.000Z',
      nixAt: null,
      error: 'banner exchange timed out',
    },
  });
  const { app } = setup(t, fake);
  const res = await app.inject({ method: 'GET', url: '/v1/health' });
  t.equal(res.statusCode, 503);
  t.same(res.json(), {
    healthy: false,
    state: 'degraded',
    reason: 'SSH probe failing: banner exchange timed out',
  });
});

t.test('GET /v1/logs defaults to the last 200 daemon lines', async (t) => {
  const fake = new FakeController();
  fake.logLines.daemon = Array.from({ length: 300 }, (_, i) => `line ${i}`);
  const { app } = setup(t, fake);
  const res = await app.inject({ method: 'GET', url: '/v1/logs' });
  t.equal(res.statusCode, 200);
  t.equal(res.json().source, 'daemon');
  t.equal(res.json().lines.length, 200);
  t.equal(res.json().lines[199], 'line 299');
  t.same(fake.calls, ['logs daemon:200']);
});

t.test('GET /v1/logs passes source and lines through', async (t) => {
  const fake = new FakeController();
  fake.logLines.console = ['boot', 'sshd up'];
  const { app } = setup(t, fake);
  const res = await app.inject({ method: 'GET', url: '/v1/logs?source=console&lines=1' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { source: 'console', lines: ['sshd up'] });
  t.same(fake.calls, ['logs console:1']);
});

const badQueries: Array<[string, string]> = [
  ['lines=10001', 'querystring/lines must be <= 10000'],
  ['lines=0', 'querystring/lines must be >= 1'],
  ['lines=many', 'querystring/lines must be integer'],
  ['lines=Infinity', 'querystring/lines must be an integer between 1 and 10000'],
  ['lines=1e309', 'querystring/lines must be an integer between 1 and 10000'],
  ['source=kernel', 'querystring/source must be one of: console, daemon'],
  ['line=5', 'querystring has an unknown parameter "line"'],
];
for (const [query, message] of badQueries) {
  t.test(`GET /v1/logs?${query} is a 400: ${message}`, async (t) => {
    const { app, fake } = setup(t);
    const res = await app.inject({ method: 'GET', url: `/v1/logs?${query}` });
    t.equal(res.statusCode, 400);
    t.same(res.json(), { error: 'bad_request', message });
    t.same(fake.calls, []);
  });
}

t.test('an unknown route is a 404 that lists the routes', async (t) => {
  const { app } = setup(t);
  const res = await app.inject({ method: 'GET', url: '/v1/nope?x=1' });
  t.equal(res.statusCode, 404);
  t.equal(res.json().error, 'not_found');
  t.match(res.json().message, /^no route GET \/v1\/nope; the routes are GET \/v1\/status, POST \/v1\/start/);
});

t.test('a wrong method on a known path is a 405 with an Allow header', async (t) => {
  const { app, fake } = setup(t);
  const post = await app.inject({ method: 'POST', url: '/v1/status' });
  t.equal(post.statusCode, 405);
  t.equal(post.headers.allow, 'GET');
  t.same(post.json(), {
    error: 'method_not_allowed',
    message: 'POST is not allowed on /v1/status; allowed: GET',
  });
  const get = await app.inject({ method: 'GET', url: '/v1/restart' });
  t.equal(get.statusCode, 405);
  t.equal(get.headers.allow, 'POST');
  t.same(fake.calls, []);
});

t.test('a controller that throws is a 500 with its message and no stack', async (t) => {
  const fake = new FakeController();
  fake.failWith('status', new Error('state file unreadable'));
  fake.failWith('logs', new Error('console log missing'));
  fake.failWith('start', new Error('backend crashed'));
  const { app } = setup(t, fake);
  const status = await app.inject({ method: 'GET', url: '/v1/status' });
  t.equal(status.statusCode, 500);
  t.same(status.json(), { error: 'internal', message: 'internal error: state file unreadable' });
  t.notMatch(status.body, /at .*\.ts:\d+/, 'no stack trace in the answer');
  const logs = await app.inject({ method: 'GET', url: '/v1/logs' });
  t.equal(logs.statusCode, 500);
  t.same(logs.json(), { error: 'internal', message: 'internal error: console log missing' });
  const start = await app.inject({ method: 'POST', url: '/v1/start' });
  t.equal(start.statusCode, 500);
  t.same(start.json(), { error: 'internal', message: 'internal error: backend crashed' });
});

t.test('a status the schema cannot serialize is a 500, not a half-written answer', async (t) => {
  const fake = new FakeController();
  (fake.current as unknown as Record<string, unknown>).state = undefined;
  const { app } = setup(t, fake);
  const res = await app.inject({ method: 'GET', url: '/v1/status' });
  t.equal(res.statusCode, 500);
  t.equal(res.json().error, 'internal');
});

t.test('GET /v1/events starts with the current state as an initial event', async (t) => {
  const { app, fake } = setup(t);
  await app.ready();
  // inject() waits for the whole body; close the stream from the server side once it started.
  const pending = app.inject({ method: 'GET', url: '/v1/events' });
  setImmediate(() => app.close());
  const res = await pending;
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/x-ndjson/);
  const lines = res.body
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  t.equal(lines.length, 1);
  t.match(lines[0], { type: 'state', state: 'running', initial: true, status: fake.current });
  t.equal(fake.listenerCount(), 0, 'closing the server removed the listener');
});

t.test(
  'a 500 is logged with its stack for the operator; accepted actions are logged; status polls are not',
  async (t) => {
    const records: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) });
    const fake = new FakeController();
    fake.failWith('logs', new Error('console log missing'));
    const app = buildApiServer(fake, { logger });
    t.teardown(() => app.close());
    await app.inject({ method: 'GET', url: '/v1/status' });
    await app.inject({ method: 'POST', url: '/v1/restart' });
    await app.inject({ method: 'GET', url: '/v1/logs' });
    t.same(
      records.map((r) => r.msg),
      ['API action accepted', 'API request failed'],
    );
    t.match(records[0], { level: 30, url: '/v1/restart' });
    t.match(records[1], {
      level: 50,
      url: '/v1/logs',
      err: { message: 'console log missing', stack: /Error: console log missing\n\s+at / },
    });
  },
);
