// The kept SSH connection behind the cheap liveness check, against an ssh2 server standing in for
// the guest, reached through a TCP relay that counts connections and can freeze like a hung guest.
// What matters: checks share one connection; a guest that stops answering fails the check within
// its deadline and the next check starts over; a guest that went away (a restart) is met with a
// new connection; the pinned host key holds; a new port gets a new connection.
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';
import { ensureBuilderKeys } from '../../daemon/keys/builder-keys.js';
import { GuestLink } from '../../daemon/probe/guest-link.js';
import type { GuestSshTarget } from '../../daemon/probe/guest-ssh.js';
import { freePort, tempDir } from '../helpers/env.js';

// ssh2 is CommonJS and exports Server only on its default export.
const { Server: SshServer } = ssh2;

/** An SSH server that authenticates any public key and opens no sessions. */
async function sshGuest(hostKeyFile: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = new SshServer({ hostKeys: [await readFile(hostKeyFile)] }, (client) => {
    client.on('authentication', (ctx) =>
      ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey']),
    );
    client.on('error', () => undefined);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A relay to `to` that counts the connections made through it and can stop passing bytes on. */
async function relay(to: number) {
  const sockets: Socket[] = [];
  let frozen = false;
  let connections = 0;
  const server: Server = createServer((inbound) => {
    connections++;
    const outbound = connect(to, '127.0.0.1');
    sockets.push(inbound, outbound);
    for (const [from, into] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      from.on('data', (d) => frozen || into.write(d));
      from.on('close', () => into.destroy());
      from.on('error', () => undefined);
    }
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    connections: () => connections,
    freeze: (on: boolean) => (frozen = on),
    /** Every connection through it ends, as when a VM goes away. */
    dropAll: () => {
      for (const s of sockets.splice(0)) s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

t.test('the kept SSH connection', async (t) => {
  const dir = await tempDir('guest-link');
  const keys = await ensureBuilderKeys(join(dir, 'keys'));
  const other = await ensureBuilderKeys(join(dir, 'other'));
  const privateKey = await readFile(keys.clientKey);
  const guest = await sshGuest(keys.hostKey);
  t.teardown(() => guest.close());
  const targetAt = (port: number): GuestSshTarget => ({
    host: '127.0.0.1',
    port,
    username: 'root',
    privateKey,
    hostPublicKeyLine: keys.hostPublicKeyLine,
  });

  /** A link to the guest through a fresh relay, both closed when `t` ends. */
  async function linkThroughRelay(t: { teardown(fn: () => unknown): void }) {
    const r = await relay(guest.port);
    const link = new GuestLink(() => targetAt(r.port));
    t.teardown(async () => {
      link.close();
      await r.close();
    });
    return { r, link };
  }

  t.test('checks share one connection', async (t) => {
    const { r, link } = await linkThroughRelay(t);
    for (let i = 0; i < 3; i++) {
      const { latencyMs } = await link.check({ deadlineMs: 10_000 });
      t.ok(latencyMs >= 0 && latencyMs < 10_000, `check ${i + 1}: ${latencyMs} ms`);
    }
    t.equal(r.connections(), 1, 'three checks, one connection');
  });

  t.test('a guest that stops answering fails within the deadline; the next check starts over', async (t) => {
    const { r, link } = await linkThroughRelay(t);
    await link.check({ deadlineMs: 10_000 });
    r.freeze(true);
    const began = performance.now();
    await t.rejects(link.check({ deadlineMs: 800 }), {
      name: 'GuestSshTimeoutError',
      message: /no answer from root@127\.0\.0\.1:\d+ on the kept SSH connection within 800 ms/,
    });
    const took = performance.now() - began;
    t.ok(took >= 790 && took < 3000, `failed after ${Math.round(took)} ms`);
    await t.rejects(link.check({ deadlineMs: 800 }), { name: 'GuestSshTimeoutError' }, 'still hung');
    r.freeze(false);
    await link.check({ deadlineMs: 10_000 });
    t.equal(r.connections(), 3, 'a new connection after each failure');
  });

  t.test('a guest that went away is met with a new connection', async (t) => {
    const { r, link } = await linkThroughRelay(t);
    await link.check({ deadlineMs: 10_000 });
    r.dropAll();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await link.check({ deadlineMs: 10_000 });
    t.equal(r.connections(), 2);
  });

  t.test('a new port gets a new connection', async (t) => {
    const a = await relay(guest.port);
    const b = await relay(guest.port);
    let port = a.port;
    const link = new GuestLink(() => targetAt(port));
    t.teardown(async () => {
      link.close();
      await a.close();
      await b.close();
    });
    await link.check({ deadlineMs: 10_000 });
    port = b.port;
    await link.check({ deadlineMs: 10_000 });
    t.same([a.connections(), b.connections()], [1, 1]);
  });

  t.test('only the pinned host key is trusted', async (t) => {
    const impostor = await sshGuest(other.hostKey);
    const link = new GuestLink(() => targetAt(impostor.port));
    t.teardown(async () => {
      link.close();
      await impostor.close();
    });
    await t.rejects(link.check({ deadlineMs: 10_000 }), { name: 'HostKeyMismatchError' });
  });

  t.test('nothing listening fails at once, not at the deadline', async (t) => {
    const link = new GuestLink(() => targetAt(1));
    const began = performance.now();
    await t.rejects(link.check({ deadlineMs: 10_000 }), { message: /ssh to root@127\.0\.0\.1:1 failed/ });
    t.ok(performance.now() - began < 5000);
  });
});
