// The cheap liveness check between Nix probes: one SSH connection the daemon keeps open to the
// guest, and on it one global request that the guest's SSH server answers. A fresh connection for
// every check (the banner) costs the guest a fork of its SSH server, ~40 ms of QEMU's CPU under tcg
// each time, 0.25 % of a core at one check every 15 s; a request on the kept connection ~5 ms
// (bench/liveness-cost.mjs, docs/performance.md).
//
// The request is "no-more-sessions@openssh.com" with a reply wanted. It is true of this connection,
// which never opens a session; OpenSSH grants it, dropbear refuses it as unknown, and either
// answer is the round trip. ssh2 sends it to a server it does not know as OpenSSH only with
// strictVendor off (otherwise it answers itself, without asking the server).
//
// Any failure drops the connection and the next check opens a new one, with the full handshake and
// the pinned host key: so does a new VM, or a new port, behind the target.
import { Client } from 'ssh2';
import {
  GuestSshTimeoutError,
  type GuestSshTarget,
  type HostKeyMismatchError,
  pinnedConnectConfig,
} from './guest-ssh.js';

interface Kept {
  client: Client;
  /** host:port it was opened to. */
  to: string;
  ready: Promise<void>;
}

export class GuestLink {
  private kept: Kept | null = null;

  /** `target` is read at every check: the VM's forwarded port may change between boots. */
  constructor(private readonly target: () => GuestSshTarget) {}

  /** One round trip on the kept connection (opened first when there is none), within `deadlineMs`. */
  async check(opts: { deadlineMs: number }): Promise<{ latencyMs: number }> {
    const started = performance.now();
    const target = this.target();
    const where = `${target.username}@${target.host}:${target.port}`;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new GuestSshTimeoutError(
              `no answer from ${where} on the kept SSH connection within ${opts.deadlineMs} ms`,
            ),
          ),
        opts.deadlineMs,
      );
    });
    try {
      const kept = this.connection(target, opts.deadlineMs);
      await Promise.race([kept.ready, deadline]);
      await Promise.race([answered(kept.client, where), deadline]);
      return { latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the kept connection, if any; the next check opens a new one. */
  close(): void {
    const kept = this.kept;
    this.kept = null;
    if (!kept) return;
    kept.ready.catch(() => {});
    kept.client.end();
    kept.client.destroy();
  }

  private connection(target: GuestSshTarget, readyTimeout: number): Kept {
    const to = `${target.host}:${target.port}`;
    if (this.kept && this.kept.to !== to) this.close();
    if (this.kept) return this.kept;
    const where = `${target.username}@${to}`;
    const client = new Client();
    let mismatch: HostKeyMismatchError | null = null;
    const ready = new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.on('error', (err) => reject(mismatch ?? new Error(`ssh to ${where} failed: ${err.message}`)));
      client.once('close', () => reject(mismatch ?? new Error(`ssh connection to ${where} closed`)));
    });
    const kept: Kept = { client, to, ready };
    // A connection that ends is forgotten, so the next check opens a new one.
    client.once('close', () => {
      if (this.kept === kept) this.kept = null;
    });
    client.connect({
      ...pinnedConnectConfig(target, { readyTimeout, onMismatch: (err) => (mismatch = err) }),
      strictVendor: false,
    });
    client.setNoDelay(true);
    this.kept = kept;
    return kept;
  }
}

/** Resolves once the server answers one global request (either way); rejects if the connection ends first. */
function answered(client: Client, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const closed = () => reject(new Error(`the kept SSH connection to ${where} closed`));
    client.once('close', closed);
    client.openssh_noMoreSessions(() => {
      client.off('close', closed);
      resolve();
    });
  });
}
