// The health checks against stand-in guests on a local port: plain TCP servers for the SSH banner,
// an ssh2 server for the Nix probe. What matters: a guest whose SSH server starts late is noticed
// on a fresh connection (not one stuck from before), the probe's latency never includes that
// wait, the pinned host key still holds on the connection the banner came in on, and a guest that
// accepts but never answers fails within the deadline.
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';
import { ensureBuilderKeys } from '../../daemon/keys/builder-keys.js';
import { GuestLink } from '../../daemon/probe/guest-link.js';
import type { GuestSshTarget } from '../../daemon/probe/guest-ssh.js';
import { probeBuilder, probeGuest } from '../../daemon/probe/readiness-probe.js';
import { awaitSshBanner, SshBannerTimeoutError } from '../../daemon/probe/ssh-banner.js';
import { freePort, tempDir } from '../helpers/env.js';

// ssh2 is CommonJS and exports Server only on its default export.
const { Server: SshServer } = ssh2;
type SshServer = InstanceType<typeof SshServer>;

const BANNER = 'SSH-2.0-dropbear_2022.83';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP server whose connections get `greet(n)` (n counts from 0), or nothing when it returns null. */
async function tcpGuest(port: number, greet: (n: number) => string | null) {
  const conns: Array<{ socket: Socket; closed: boolean }> = [];
  const server: Server = createServer((socket) => {
    const c = { socket, closed: false };
    conns.push(c);
    socket.on('close', () => (c.closed = true));
    socket.on('error', () => undefined);
    const line = greet(conns.length - 1);
    if (line !== null) socket.write(line);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    conns,
    close: () => {
      for (const c of conns) c.socket.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

t.test('the SSH banner', async (t) => {
  t.test('a server that starts listening late is found on a fresh connection', async (t) => {
    const port = await freePort();
    let guest: Awaited<ReturnType<typeof tcpGuest>> | null = null;
    t.teardown(() => guest?.close());
    setTimeout(async () => (guest = await tcpGuest(port, () => `${BANNER}\r\n`)), 600);
    const got = await awaitSshBanner('127.0.0.1', port, { deadlineMs: 20_000, retryEveryMs: 100 });
    t.equal(got.banner, BANNER);
    t.ok(got.waitedMs >= 500, `waited for the server (${got.waitedMs} ms)`);
    // The banner is left unread on the socket for ssh2.
    const unread = new Promise<string>((r) => got.socket.once('data', (d) => r(d.toString())));
    got.socket.resume(); // handed over paused: ssh2 resumes it once it listens

    t.equal(await unread, `${BANNER}\r\n`, 'the banner bytes are still there to read');
    got.socket.destroy();
  });

  t.test('connections made while the guest was not answering are dropped for a fresh one', async (t) => {
    const port = await freePort();
    let answering = false;
    // Like QEMU's user network before sshd listens: accepted, then silence.
    const guest = await tcpGuest(port, () => (answering ? `${BANNER}\r\n` : null));
    t.teardown(() => guest.close());
    setTimeout(() => (answering = true), 700);
    const got = await awaitSshBanner('127.0.0.1', port, { deadlineMs: 20_000, retryEveryMs: 100 });
    got.socket.destroy();
    t.equal(got.banner, BANNER);
    t.ok(guest.conns.length > 1, `${guest.conns.length} connections, the answer on a later one`);
    await sleep(200);
    t.same(guest.conns.filter((c) => !c.closed).length, 0, 'every silent connection is closed by the client');
  });

  t.test('lines before the identification are allowed (RFC 4253)', async (t) => {
    const port = await freePort();
    const guest = await tcpGuest(port, () => `welcome\r\n${BANNER}\r\n`);
    t.teardown(() => guest.close());
    const got = await awaitSshBanner('127.0.0.1', port, { deadlineMs: 10_000, retryEveryMs: 1000 });
    got.socket.destroy();
    t.equal(got.banner, BANNER);
  });

  t.test('a guest that accepts and never answers fails within the deadline', async (t) => {
    const port = await freePort();
    const guest = await tcpGuest(port, () => null);
    t.teardown(() => guest.close());
    const err = await awaitSshBanner('127.0.0.1', port, { deadlineMs: 1500, retryEveryMs: 1000 }).catch(
      (e: Error) => e,
    );
    t.type(err, SshBannerTimeoutError);
    t.match((err as Error).message, `no SSH banner from 127.0.0.1:${port} within 1500 ms`);
    await sleep(200);
    t.same(guest.conns.filter((c) => !c.closed).length, 0, 'no connection is left open');
  });

  t.test('something that is not an SSH server is not taken for one', async (t) => {
    const port = await freePort();
    const guest = await tcpGuest(port, () => 'HTTP/1.1 400 Bad Request\r\n\r\n');
    t.teardown(() => guest.close());
    await t.rejects(
      awaitSshBanner('127.0.0.1', port, { deadlineMs: 1500, retryEveryMs: 1000 }),
      SshBannerTimeoutError,
    );
  });
});

t.test('the Nix probe', async (t) => {
  const dir = await tempDir('probe');
  const keys = await ensureBuilderKeys(join(dir, 'keys'));
  const other = await ensureBuilderKeys(join(dir, 'other'));
  const privateKey = await readFile(keys.clientKey);
  const target = (port: number): GuestSshTarget => ({
    host: '127.0.0.1',
    port,
    username: 'root',
    privateKey,
    hostPublicKeyLine: keys.hostPublicKeyLine,
  });

  /** The bytes a Nix 2.8.0 daemon (protocol 1.34) writes for the handshake, laid out by hand. */
  const daemonReply = Buffer.concat([
    Buffer.from('6f69786400000000', 'hex'), // WORKER_MAGIC_2
    Buffer.from('2201000000000000', 'hex'), // 1.34
    Buffer.from('0500000000000000', 'hex'), // the version string's length
    Buffer.from('322e382e30000000', 'hex'), // "2.8.0", padded to 8
    Buffer.from('73746c6100000000', 'hex'), // STDERR_LAST
  ]);

  /** A stand-in guest whose `nix-daemon --stdio` answers the handshake like Nix 2.8.0. */
  async function sshGuest(port: number, hostKeyFile: string): Promise<SshServer> {
    const hostKey = await readFile(hostKeyFile);
    const server = new SshServer({ hostKeys: [hostKey] }, (client) => {
      client.on('authentication', (ctx) =>
        ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey']),
      );
      client.on('ready', () => {
        client.on('session', (accept) => {
          accept().on('exec', (acceptExec, _reject, info) => {
            const stream = acceptExec();
            if (info.command !== 'nix-daemon --stdio') {
              stream.exit(127);
              stream.end();
              return;
            }
            // Like Nix's own `nix-daemon --stdio` forwarding to a running daemon: it copies the
            // daemon's answer only while its input is open, so the rest of the reply is lost
            // to a client that closes its side early.
            const got: Buffer[] = [];
            let inputOpen = true;
            stream.on('data', (d: Buffer) => {
              got.push(d);
              const request = Buffer.concat(got);
              // The client's side: WORKER_MAGIC_1, then its version, affinity and reserveSpace.
              if (request.length !== 32 || request.readUInt32LE(0) !== 0x6e697863) return;
              stream.write(daemonReply.subarray(0, 16));
              setTimeout(() => inputOpen && stream.write(daemonReply.subarray(16)), 100);
            });
            stream.on('end', () => {
              inputOpen = false;
              stream.exit(0);
              stream.end();
            });
          });
        });
      });
      client.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    return server;
  }

  t.test(
    'a guest whose SSH server starts late: Nix answers, and the latency leaves out the wait',
    async (t) => {
      const port = await freePort();
      let server: SshServer | null = null;
      t.teardown(() => server?.close());
      setTimeout(async () => (server = await sshGuest(port, keys.hostKey)), 1000);
      const started = performance.now();
      const r = await probeBuilder(target(port), { deadlineMs: 30_000 });
      const elapsed = performance.now() - started;
      t.equal(r.nixVersion, '2.8.0');
      t.ok(r.waitedMs >= 900, `waited for the SSH server (${r.waitedMs} ms)`);
      t.ok(
        r.latencyMs <= elapsed - r.waitedMs + 2,
        `latency ${r.latencyMs} ms is counted from the banner, not from the call (${Math.round(elapsed)} ms)`,
      );
    },
  );

  t.test('the pinned host key still holds on the connection the banner came in on', async (t) => {
    const port = await freePort();
    const server = await sshGuest(port, other.hostKey);
    t.teardown(() => server.close());
    await t.rejects(probeBuilder(target(port), { deadlineMs: 20_000 }), {
      name: 'HostKeyMismatchError',
    });
  });

  t.test('the SSH check asks nothing of Nix, on the kept connection; the Nix check does', async (t) => {
    const port = await freePort();
    const server = await sshGuest(port, keys.hostKey);
    const link = new GuestLink(() => target(port));
    t.teardown(() => {
      link.close();
      server.close();
    });
    let execs = 0;
    server.on('connection', (client) => client.on('session', () => execs++));
    t.match(await probeGuest(target(port), 'ssh', { deadlineMs: 20_000, link }), { nixVersion: null });
    t.equal(execs, 0, 'no session, no command');
    t.match(await probeGuest(target(port), 'nix', { deadlineMs: 20_000, link }), {
      nixVersion: '2.8.0',
    });
  });

  t.test('a guest that accepts and never answers fails the Nix probe within its deadline', async (t) => {
    const port = await freePort();
    const guest = await tcpGuest(port, () => null);
    t.teardown(() => guest.close());
    await t.rejects(probeBuilder(target(port), { deadlineMs: 1500 }), {
      name: 'SshBannerTimeoutError',
      message: /no SSH banner/,
    });
  });
});
