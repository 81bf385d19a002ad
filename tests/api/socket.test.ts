// The transport details, each over a real Unix socket: permissions, stale and live sockets, path
// length, and the event stream's listener life cycle.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildApiServer, checkSocketPath, listenOnUnixSocket } from '../../daemon/api/server.js';
import { FakeController } from './fixtures/fake-controller.js';

function tempDir(t: { teardown: (fn: () => unknown) => void }): string {
  // os.tmpdir(), not t.testdir(): the project path would push socket paths past the limit.
  const dir = mkdtempSync(join(tmpdir(), 'lk-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function getJson(socketPath: string, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('the socket is created with mode 0600 and serves the API', async (t) => {
  const socketPath = join(tempDir(t), 'daemon.sock');
  const fake = new FakeController();
  const app = buildApiServer(fake);
  t.teardown(() => app.close());
  const umaskBefore = process.umask();
  await listenOnUnixSocket(app, socketPath);
  t.equal(statSync(socketPath).mode & 0o777, 0o600);
  t.ok(statSync(socketPath).isSocket());
  t.equal(process.umask(), umaskBefore, 'the process umask is restored after the bind');
  const res = await getJson(socketPath, '/v1/status');
  t.equal(res.status, 200);
  t.same(res.body, fake.current);
});

t.test('a stale socket left by a killed daemon is replaced', async (t) => {
  const socketPath = join(tempDir(t), 'daemon.sock');
  // A process that dies by SIGKILL while listening leaves its socket file behind.
  spawnSync(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ]);
  t.ok(statSync(socketPath).isSocket(), 'the stale socket file exists');
  const app = buildApiServer(new FakeController());
  t.teardown(() => app.close());
  await listenOnUnixSocket(app, socketPath);
  t.equal((await getJson(socketPath, '/v1/health')).status, 200);
  t.equal(statSync(socketPath).mode & 0o777, 0o600);
});

t.test('a socket another daemon listens on is refused and left alone', async (t) => {
  const socketPath = join(tempDir(t), 'daemon.sock');
  const other: Server = createServer((conn) => conn.end());
  await new Promise<void>((resolve) => other.listen(socketPath, resolve));
  t.teardown(() => new Promise((resolve) => other.close(resolve)));
  const app = buildApiServer(new FakeController());
  t.teardown(() => app.close());
  await t.rejects(listenOnUnixSocket(app, socketPath), {
    message: `another linuxkitd is already listening on ${socketPath}`,
  });
  t.ok(other.listening, 'the other daemon still listens');
  t.ok(existsSync(socketPath), 'its socket file is still there');
});

t.test('a regular file at the socket path is refused, not deleted', async (t) => {
  const socketPath = join(tempDir(t), 'daemon.sock');
  writeFileSync(socketPath, 'not a socket');
  const app = buildApiServer(new FakeController());
  t.teardown(() => app.close());
  await t.rejects(listenOnUnixSocket(app, socketPath), {
    message: `refusing to replace ${socketPath}: it exists and is not a socket`,
  });
  t.ok(statSync(socketPath).isFile());
});

t.test('a socket path too long for the kernel is refused with its length', async (t) => {
  const socketPath = join(tempDir(t), `${'d'.repeat(120)}.sock`);
  const bytes = Buffer.byteLength(socketPath);
  const app = buildApiServer(new FakeController());
  t.teardown(() => app.close());
  await t.rejects(listenOnUnixSocket(app, socketPath), {
    message: new RegExp(
      `^socket path ${socketPath} is ${bytes} bytes; on ${process.platform} a Unix socket path may have at most`,
    ),
  });
  t.notOk(existsSync(socketPath));
});

t.test('the path limit counts the terminating NUL: 104 on macOS, 108 on Linux', async (t) => {
  const path = (bytes: number) => `/${'x'.repeat(bytes - 1)}`;
  t.doesNotThrow(() => checkSocketPath(path(103), 'darwin'));
  t.throws(() => checkSocketPath(path(104), 'darwin'), {
    message:
      /is 104 bytes; on darwin a Unix socket path may have at most 103 bytes \(104 with the terminating NUL\)/,
  });
  t.doesNotThrow(() => checkSocketPath(path(107), 'linux'));
  t.throws(() => checkSocketPath(path(108), 'linux'), {
    message: /at most 107 bytes \(108 with the terminating NUL\)/,
  });
  t.throws(
    () => checkSocketPath(`/${'é'.repeat(52)}`, 'darwin'),
    { message: /is 105 bytes/ },
    'bytes, not characters',
  );
});

t.test(
  '/v1/events streams lines over the socket and drops its listener when the client leaves',
  async (t) => {
    const socketPath = join(tempDir(t), 'daemon.sock');
    const fake = new FakeController();
    const app = buildApiServer(fake);
    t.teardown(() => app.close());
    await listenOnUnixSocket(app, socketPath);

    const lines: Array<Record<string, unknown>> = [];
    let contentType = '';
    const req = request({ socketPath, path: '/v1/events' }, (res) => {
      contentType = String(res.headers['content-type']);
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buffered.slice(0, newline)));
          buffered = buffered.slice(newline + 1);
        }
      });
    });
    req.on('error', () => {});
    req.end();

    await until(() => lines.length === 1, 'the initial line');
    t.match(contentType, /^application\/x-ndjson/);
    t.match(lines[0], { type: 'state', state: 'running', initial: true });
    t.equal(fake.listenerCount(), 1, 'one listener while the client is connected');

    fake.set({ state: 'stopping', healthy: false }, 'stop requested');
    fake.set({ state: 'stopped' }, 'guest powered off');
    await until(() => lines.length === 3, 'two streamed events');
    t.match(lines[1], { type: 'state', from: 'running', state: 'stopping', message: 'stop requested' });
    t.match(lines[2], { type: 'state', from: 'stopping', state: 'stopped', message: 'guest powered off' });

    req.destroy();
    await until(() => fake.listenerCount() === 0, 'the listener to be removed');
    t.equal(fake.listenerCount(), 0, 'no listener left after the client disconnected');
  },
);

t.test('closing the server ends open event streams instead of waiting for clients', async (t) => {
  const socketPath = join(tempDir(t), 'daemon.sock');
  const fake = new FakeController();
  const app = buildApiServer(fake);
  await listenOnUnixSocket(app, socketPath);
  let ended = false;
  await new Promise<void>((resolve) => {
    const req = request({ socketPath, path: '/v1/events' }, (res) => {
      res.once('data', () => resolve());
      res.on('end', () => (ended = true));
      res.resume();
    });
    req.end();
  });
  await app.close();
  await until(() => ended, 'the client to see the end of the stream');
  t.ok(ended, 'the client saw the stream end');
  t.equal(fake.listenerCount(), 0);
  t.notOk(existsSync(socketPath), 'the socket file is removed on close');
});

t.test('an event JSON cannot encode becomes an error line, and never throws into the emitter', async (t) => {
  const socketPath = join(tempDir(t), 'daemon.sock');
  const fake = new FakeController();
  const app = buildApiServer(fake);
  t.teardown(() => app.close());
  await listenOnUnixSocket(app, socketPath);
  let body = '';
  const req = request({ socketPath, path: '/v1/events' }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (body += chunk));
  });
  req.on('error', () => {});
  req.end();
  t.teardown(() => req.destroy());
  await until(() => body.includes('\n'), 'the initial line');
  t.doesNotThrow(() =>
    fake.emit({ at: '2025-01-01T00:00:00.000Z', type: 'probe', message: 'odd', size: 1n }),
  );
  await until(() => body.split('\n').length > 2, 'the error line');
  const second = JSON.parse(body.split('\n')[1]!);
  t.match(second, { type: 'error', message: /^an event of type probe could not be sent: / });
});
