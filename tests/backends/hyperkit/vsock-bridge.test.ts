// The daemon's SSH listener for hyperkit: 127.0.0.1 only; each connection opens hyperkit's
// vsock `connect` socket, sends the 18-byte header in one write, then is a byte stream. A Unix
// server here plays hyperkit's side and checks what arrives.
import t from 'tap';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { VsockBridge } from '../../../daemon/backends/hyperkit/vsock-bridge.js';
import { freePort, tempDir } from '../../helpers/env.js';

interface FakeHyperkit {
  path: string;
  server: Server;
  /** The first chunk each connection delivered (hyperkit reads the header with one read). */
  firstChunks: Buffer[];
}

/** Plays hyperkit's `connect` socket: checks the header, then runs `serve` as the guest port. */
async function fakeHyperkit(t: Tap, serve: (s: Socket, rest: Buffer) => void): Promise<FakeHyperkit> {
  const dir = await tempDir('vsock');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'connect');
  const firstChunks: Buffer[] = [];
  const server = createServer((s) => {
    s.on('error', () => {});
    s.once('data', (chunk) => {
      firstChunks.push(chunk);
      if (chunk.length < 18 || chunk.subarray(0, 18).toString() !== '00000003.00000016\n') {
        s.destroy();
        return;
      }
      serve(s, chunk.subarray(18));
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(() => new Promise((r) => server.close(r)));
  return { path, server, firstChunks };
}

type Tap = { teardown(fn: () => unknown): void };

async function bridgeTo(t: Tap, connectSocket: string): Promise<VsockBridge> {
  const bridge = await VsockBridge.listen({ port: await freePort(), connectSocket });
  t.teardown(() => bridge.close());
  return bridge;
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function readUntil(s: Socket, pred: (data: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      data = Buffer.concat([data, c]);
      if (pred(data)) {
        s.off('data', onData);
        resolve(data);
      }
    };
    s.on('data', onData);
    s.once('close', () => resolve(data));
    s.once('error', reject);
  });
}

t.test('listens on 127.0.0.1 only', async (t) => {
  const hk = await fakeHyperkit(t, () => {});
  const bridge = await bridgeTo(t, hk.path);
  t.equal(bridge.address.host, '127.0.0.1');
});

t.test(
  'an SSH-like exchange: header first in one write, the banner back, then bytes both ways',
  async (t) => {
    const hk = await fakeHyperkit(t, (s, rest) => {
      s.write('SSH-2.0-fake_guest\r\n');
      // Echo everything, including what came in the header's chunk.
      if (rest.length) s.write(rest);
      s.pipe(s);
    });
    const bridge = await bridgeTo(t, hk.path);
    const c = await connect(bridge.address.port);
    // The client speaks first, as an SSH client does; the bridge holds it until the header is out.
    c.write('SSH-2.0-OpenSSH_9.6\r\n');
    const banner = await readUntil(c, (d) => d.includes('OpenSSH_9.6\r\n'));
    t.match(banner.toString(), /^SSH-2\.0-fake_guest\r\nSSH-2\.0-OpenSSH_9\.6\r\n$/);
    t.equal(
      hk.firstChunks[0].subarray(0, 18).toString(),
      '00000003.00000016\n',
      'the first read holds the whole header',
    );
    // A megabyte of random bytes makes the round trip intact.
    const blob = randomBytes(1 << 20);
    const echoed = readUntil(c, (d) => d.length >= blob.length);
    c.write(blob);
    t.ok((await echoed).equals(blob), '1 MiB echoed byte for byte');
    t.equal(bridge.connections, 1);
    c.end();
    await new Promise((r) => c.once('close', r));
  },
);

t.test('the guest closing its side ends the client connection after the last bytes', async (t) => {
  const hk = await fakeHyperkit(t, (s) => s.end('SSH-2.0-fake_guest\r\nbye\n'));
  const bridge = await bridgeTo(t, hk.path);
  const c = await connect(bridge.address.port);
  const all = await readUntil(c, () => false);
  t.equal(all.toString(), 'SSH-2.0-fake_guest\r\nbye\n');
});

t.test(
  'before hyperkit is up (no connect socket) a client is closed at once, not left hanging',
  async (t) => {
    const dir = await tempDir('vsock');
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const bridge = await bridgeTo(t, join(dir, 'connect'));
    const c = await connect(bridge.address.port);
    const got = await readUntil(c, () => false);
    t.equal(got.length, 0, 'closed with nothing read');
    t.equal(bridge.connections, 0);
  },
);

t.test('a guest that refuses the port (hyperkit closes the socket) closes the client', async (t) => {
  const hk = await fakeHyperkit(t, (s) => s.destroy());
  const bridge = await bridgeTo(t, hk.path);
  const c = await connect(bridge.address.port);
  t.equal((await readUntil(c, () => false)).length, 0);
});

t.test('a taken port is named in the error', async (t) => {
  const port = await freePort();
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => squatter.close(r)));
  await t.rejects(VsockBridge.listen({ port, connectSocket: '/nonexistent/connect' }), {
    message: `cannot listen for SSH on 127.0.0.1:${port}: it is already in use`,
  });
  await t.rejects(VsockBridge.listen({ port: 0, connectSocket: '/x' }), {
    message: 'sshPort must be an integer in 1..65535, got 0',
  });
});

t.test('close() cuts carried connections and stops listening', async (t) => {
  const hk = await fakeHyperkit(t, (s) => s.write('SSH-2.0-fake_guest\r\n'));
  const bridge = await VsockBridge.listen({ port: await freePort(), connectSocket: hk.path });
  const c = await connect(bridge.address.port);
  await readUntil(c, (d) => d.includes('\n'));
  const closed = new Promise((r) => c.once('close', r));
  await bridge.close();
  await closed;
  await t.rejects(connect(bridge.address.port), { code: 'ECONNREFUSED' });
  await bridge.close();
});
