// The QMP client against a fake QEMU: a node:net server speaking the protocol, including the
// awkward parts (split chunks, batched lines, events between command and reply, a vanishing peer).
import t from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmpClient, QmpError, type QmpEvent } from '../../../daemon/backends/qemu/qmp.js';
import { tempDir } from '../../helpers/env.js';

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}\r\n';
const EVENT = '{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"}\r\n';

type Command = { execute: string; arguments?: unknown; id?: number };
/** Handles one command; `send` writes raw text to the client. */
type Script = (cmd: Command, send: (text: string) => void, socket: Socket) => void | Promise<void>;

const reply = (cmd: Command, ret: unknown = {}) => JSON.stringify({ return: ret, id: cmd.id }) + '\r\n';

type Teardown = { teardown(fn: () => unknown): void };

async function fakeQmp(
  t: Teardown,
  script: Script,
  greet: (socket: Socket) => void = (s) => s.write(GREETING),
) {
  const dir = await tempDir('qmp');
  const path = join(dir, 'qmp.sock');
  const received: Command[] = [];
  const server: Server = createServer((socket) => {
    greet(socket);
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', async (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl)) as Command;
        buf = buf.slice(nl + 1);
        received.push(cmd);
        if (cmd.execute === 'qmp_capabilities') socket.write(reply(cmd));
        else await script(cmd, (text) => socket.write(text), socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  return { path, received };
}

t.test('connect reads a greeting split across chunks, negotiates, and exposes the version', async (t) => {
  const server = await fakeQmp(
    t,
    (cmd, send) => send(reply(cmd, { running: true, singlestep: false, status: 'running' })),
    (socket) => {
      socket.write(GREETING.slice(0, 20));
      setTimeout(() => socket.write(GREETING.slice(20, 70)), 20);
      setTimeout(() => socket.write(GREETING.slice(70)), 40);
    },
  );
  const qmp = await QmpClient.connect(server.path, { timeoutMs: 2000 });
  t.teardown(() => qmp.close());
  t.same(qmp.version, { qemu: { micro: 22, minor: 2, major: 7 }, package: 'Debian 1:7.2' });
  t.same(await qmp.queryStatus(), { running: true, status: 'running' });
  t.same(
    server.received.map((c) => c.execute),
    ['qmp_capabilities', 'query-status'],
    'qmp_capabilities is sent first',
  );
});

t.test('a reply split byte by byte and several messages in one chunk are both understood', async (t) => {
  const server = await fakeQmp(t, async (cmd, send) => {
    if (cmd.execute === 'slow') {
      for (const ch of reply(cmd, { n: 1 })) {
        send(ch);
        await sleep(1);
      }
    } else if (cmd.execute === 'batch') {
      // An event, this reply and a second event in a single write.
      send(EVENT + reply(cmd, { n: 2 }) + EVENT.replace('STOP', 'RESUME'));
    }
  });
  const qmp = await QmpClient.connect(server.path, { timeoutMs: 2000 });
  t.teardown(() => qmp.close());
  const events: string[] = [];
  qmp.on('event', (e: QmpEvent) => events.push(e.event));
  t.same(await qmp.execute('slow'), { n: 1 });
  t.same(await qmp.execute('batch'), { n: 2 });
  await sleep(10);
  t.same(events, ['STOP', 'RESUME']);
});

t.test('an event between a command and its reply is emitted and the reply still resolves', async (t) => {
  const server = await fakeQmp(t, async (cmd, send) => {
    send('{"timestamp": {"seconds": 1700000001, "microseconds": 7}, "event": "POWERDOWN"}\n');
    await sleep(20);
    send(reply(cmd));
  });
  const qmp = await QmpClient.connect(server.path, { timeoutMs: 2000 });
  t.teardown(() => qmp.close());
  const events: QmpEvent[] = [];
  qmp.on('event', (e: QmpEvent) => events.push(e));
  t.same(await qmp.execute('system_powerdown'), {});
  t.same(events, [
    { event: 'POWERDOWN', data: undefined, timestamp: { seconds: 1700000001, microseconds: 7 } },
  ]);
  t.same(server.received.at(-1), { execute: 'system_powerdown', id: 2 });
});

t.test('an error reply rejects with the QMP error class and description', async (t) => {
  const server = await fakeQmp(t, (cmd, send) =>
    send(
      JSON.stringify({
        error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` },
        id: cmd.id,
      }) + '\n',
    ),
  );
  const qmp = await QmpClient.connect(server.path, { timeoutMs: 2000 });
  t.teardown(() => qmp.close());
  const err = await qmp.execute('nope', { a: 1 }).catch((e: unknown) => e);
  t.type(err, QmpError);
  t.match(err, {
    command: 'nope',
    errorClass: 'CommandNotFound',
    desc: 'The command nope has not been found',
    message: 'QMP nope failed: CommandNotFound: The command nope has not been found',
  });
  t.same(server.received.at(-1), { execute: 'nope', id: 2, arguments: { a: 1 } });
});

t.test('commands sent together are answered in order, even by a server that echoes no id', async (t) => {
  const server = await fakeQmp(t, async (cmd, send) => {
    await sleep(cmd.execute === 'first' ? 30 : 0);
    send(JSON.stringify({ return: { name: cmd.execute } }) + '\n');
  });
  const qmp = await QmpClient.connect(server.path, { timeoutMs: 2000 });
  t.teardown(() => qmp.close());
  const results = await Promise.all(['first', 'second', 'third'].map((c) => qmp.execute(c)));
  t.same(results, [{ name: 'first' }, { name: 'second' }, { name: 'third' }]);
  t.same(
    server.received.slice(1).map((c) => c.execute),
    ['first', 'second', 'third'],
    'sent in call order',
  );
});

t.test('the server closing rejects pending commands, emits close, and refuses later ones', async (t) => {
  const server = await fakeQmp(t, (_cmd, send, socket) => {
    send(
      '{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}\n',
    );
    socket.end();
  });
  const qmp = await QmpClient.connect(server.path, { timeoutMs: 2000 });
  const events: QmpEvent[] = [];
  qmp.on('event', (e: QmpEvent) => events.push(e));
  const closed = new Promise<void>((r) => qmp.once('close', () => r()));
  await t.rejects(qmp.execute('query-status'), {
    message: 'QMP connection closed before the reply to query-status',
  });
  await closed;
  t.ok(qmp.closed);
  t.same(
    events.map((e) => e.data),
    [{ guest: true, reason: 'guest-shutdown' }],
    'the last event still arrived',
  );
  await t.rejects(qmp.execute('quit'), { message: /QMP connection closed; cannot run quit/ });
  await qmp.close(); // harmless when already closed
});

t.test('an event in the same chunk as the capabilities reply reaches onEvent', async (t) => {
  const dir = await tempDir('qmp');
  const path = join(dir, 'qmp.sock');
  const server = createServer((socket) => {
    socket.write(GREETING);
    socket.once('data', (d) => {
      const id = (JSON.parse(String(d)) as Command).id;
      socket.write(JSON.stringify({ return: {}, id }) + '\n' + EVENT);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  const events: string[] = [];
  const qmp = await QmpClient.connect(path, { timeoutMs: 2000, onEvent: (e) => events.push(e.event) });
  t.teardown(() => qmp.close());
  t.same(events, ['STOP']);
});

t.test('connect fails clearly on a missing socket, a silent server, and non-JSON', async (t) => {
  const dir = await tempDir('qmp');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await t.rejects(QmpClient.connect(join(dir, 'missing.sock'), { timeoutMs: 500 }), {
    message: /QMP at .*missing\.sock closed during the handshake: .*ENOENT/,
  });

  const silent = await fakeQmp(
    t,
    () => {},
    () => {},
  );
  const started = Date.now();
  // The message names the 200 ms timer as the cause; how long the give-up took is only reported.
  await t.rejects(QmpClient.connect(silent.path, { timeoutMs: 200 }), {
    message: /did not greet within 200 ms/,
  });
  t.comment(`a silent QMP server: gave up after ${Date.now() - started} ms (timeout 200 ms)`);

  const garbage = await fakeQmp(
    t,
    () => {},
    (s) => s.write('this is not json\n'),
  );
  await t.rejects(QmpClient.connect(garbage.path, { timeoutMs: 2000 }), {
    message: /closed during the handshake: QMP sent a line that is not JSON: this is not json/,
  });
});
