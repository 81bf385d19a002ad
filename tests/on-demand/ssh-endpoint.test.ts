// The daemon's SSH endpoint with real sockets: a TCP server on a loopback port stands in for the
// guest's forwarded sshd (it greets like sshd and echoes). A connection made while the guest is
// not ready is held with its bytes kept and goes through once it is; held connections are closed
// with the reason on a failed boot or after connectTimeoutMs; the endpoint listens on 127.0.0.1
// only, and a port in use is reported and taken once it is free.
import t from 'tap';
import * as net from 'node:net';
import { once } from 'node:events';
import { SshEndpoint, type EndpointListener } from '../../daemon/on-demand/ssh-endpoint.js';
import { freeLoopbackPort } from '../../daemon/on-demand/guest-forward-port.js';

interface Recorded {
  connections: string[];
  closed: Array<{ n: number; reason: string }>;
  problems: Array<string | null>;
  changes: number;
}

function recordingListener(): { listener: EndpointListener; seen: Recorded } {
  const seen: Recorded = { connections: [], closed: [], problems: [], changes: 0 };
  return {
    seen,
    listener: {
      connection: (by) => seen.connections.push(by),
      changed: () => seen.changes++,
      heldClosed: (n, reason) => seen.closed.push({ n, reason }),
      listenProblem: (m) => seen.problems.push(m),
    },
  };
}

/** A stand-in for the guest's sshd: sends a banner, then echoes what it gets, prefixed. */
async function fakeGuest(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((s) => {
    s.write('SSH-2.0-guest\r\n');
    s.on('data', (d) => s.write(`echo:${d}`));
    s.on('error', () => undefined);
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, server };
}

/** Connects and collects what the endpoint sends until `until` appears (or the socket closes). */
function client(port: number): { socket: net.Socket; text: () => string; closed: Promise<void> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  let got = '';
  socket.on('data', (d) => (got += d));
  socket.on('error', () => undefined);
  return { socket, text: () => got, closed: once(socket, 'close').then(() => undefined) };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('a connection made before the guest is ready is held, its bytes kept, then spliced', async (t) => {
  const { listener, seen } = recordingListener();
  const endpoint = new SshEndpoint({ connectTimeoutMs: () => 10_000, now: Date.now, listener });
  const port = await freeLoopbackPort();
  await endpoint.listenOn(port);
  t.teardown(() => endpoint.close());
  const guest = await fakeGuest();
  t.teardown(() => guest.server.close());

  const c = client(port);
  c.socket.write('SSH-2.0-client\r\n'); // what ssh sends first, before any answer
  await until(() => seen.connections.length === 1);
  t.match(seen.connections[0], /^a connection from 127\.0\.0\.1:\d+$/);
  t.same(endpoint.counts().held, 1, 'held while the guest is not ready');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(c.text(), '', 'nothing answered while held (a slow connect, not a refusal)');

  endpoint.ready(guest.port);
  await until(() => c.text().includes('echo:SSH-2.0-client'));
  t.ok(c.text().startsWith('SSH-2.0-guest\r\n'), "the guest's banner comes through");
  t.match(endpoint.counts(), { held: 0, open: 1 });

  // Once ready, a new connection goes straight through.
  const d = client(port);
  await until(() => d.text().startsWith('SSH-2.0-guest'));
  t.match(endpoint.counts(), { held: 0, open: 2 });
  c.socket.destroy();
  d.socket.destroy();
  await until(() => endpoint.counts().open === 0);
  t.ok(endpoint.counts().lastActivityAt !== null, 'closing counts as activity (the idle time starts there)');
});

t.test('held connections are closed with the reason when the boot fails', async (t) => {
  const { listener, seen } = recordingListener();
  const endpoint = new SshEndpoint({ connectTimeoutMs: () => 10_000, now: Date.now, listener });
  const port = await freeLoopbackPort();
  await endpoint.listenOn(port);
  t.teardown(() => endpoint.close());
  const clients = [client(port), client(port), client(port)];
  await until(() => endpoint.counts().held === 3);
  t.equal(endpoint.failHeld('gave up after 5 failed starts'), 3);
  await Promise.all(clients.map((c) => c.closed));
  t.same(seen.closed, [{ n: 3, reason: 'gave up after 5 failed starts' }]);
  t.equal(endpoint.counts().held, 0);
});

t.test('a held connection is closed after connectTimeoutMs, saying so', async (t) => {
  const { listener, seen } = recordingListener();
  const endpoint = new SshEndpoint({ connectTimeoutMs: () => 300, now: Date.now, listener });
  const port = await freeLoopbackPort();
  await endpoint.listenOn(port);
  t.teardown(() => endpoint.close());
  const c = client(port);
  await c.closed;
  t.same(seen.closed, [{ n: 1, reason: 'the builder was not ready within 0 s (onDemand.connectTimeoutMs)' }]);
  t.equal(endpoint.counts().held, 0);
});

t.test('a client that gives up while held is forgotten', async (t) => {
  const { listener } = recordingListener();
  const endpoint = new SshEndpoint({ connectTimeoutMs: () => 10_000, now: Date.now, listener });
  const port = await freeLoopbackPort();
  await endpoint.listenOn(port);
  t.teardown(() => endpoint.close());
  const c = client(port);
  await until(() => endpoint.counts().held === 1);
  c.socket.destroy();
  await until(() => endpoint.counts().held === 0);
  t.pass('held count back to 0');
});

t.test('listens on 127.0.0.1 only, and a port in use is reported, then taken when free', async (t) => {
  const port = await freeLoopbackPort();
  const squatter = net.createServer();
  squatter.listen({ host: '127.0.0.1', port });
  await once(squatter, 'listening');
  const { listener, seen } = recordingListener();
  const endpoint = new SshEndpoint({
    connectTimeoutMs: () => 10_000,
    now: Date.now,
    listener,
    rebindIntervalMs: 50,
  });
  await endpoint.listenOn(port);
  t.teardown(() => endpoint.close());
  t.match(seen.problems[0], new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${port}: it is in use`));
  t.equal(endpoint.listeningPort, null);
  squatter.close();
  await until(() => endpoint.listeningPort === port);
  t.equal(seen.problems.at(-1), null, 'the problem is cleared once listening');

  // Not on any other address of this machine.
  const others = Object.values((await import('node:os')).networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
  for (const address of others) {
    const s = net.connect({ host: address, port });
    const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
    t.equal(err.code, 'ECONNREFUSED', `nothing answers on ${address}:${port}`);
  }

  await endpoint.listenOn(null);
  const s = net.connect({ host: '127.0.0.1', port });
  const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
  t.equal(err.code, 'ECONNREFUSED', 'listenOn(null) stops listening');
});
