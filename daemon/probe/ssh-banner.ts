// A booting guest's first sign of life: its SSH server's identification line ("SSH-2.0-...") on a
// fresh TCP connection. No key exchange, no command: one accept in the guest.
//
// Fresh connections at a fine interval, not one patient connection: QEMU's user network accepts
// on the host at once and retransmits its SYN to the booting guest with a growing backoff, so a
// connection made early may be let through seconds after sshd listens. A new SYN is answered at once.
import { connect, type Socket } from 'node:net';

export class SshBannerTimeoutError extends Error {
  override readonly name = 'SshBannerTimeoutError';
}

export interface SshBanner {
  /** The server's identification line, without the line end. */
  banner: string;
  /** The connection that carried it, paused, with the banner bytes still unread (for ssh2). */
  socket: Socket;
  /** From the call to the banner's arrival. */
  waitedMs: number;
}

export interface AwaitBannerOptions {
  /** Gives up after this long. */
  deadlineMs: number;
  /** A new connection this often until one answers. */
  retryEveryMs: number;
  /** Connections left waiting at once; the oldest is dropped for a new one. */
  maxOpen?: number;
}

/** RFC 4253 §4.2: lines before the identification are allowed, up to this much in all. */
const MAX_PREAMBLE_BYTES = 8192;

/**
 * Resolves with the first connection to `host:port` whose server sends an SSH identification line;
 * every other connection is closed. Rejects with SshBannerTimeoutError after `deadlineMs`.
 */
export function awaitSshBanner(host: string, port: number, opts: AwaitBannerOptions): Promise<SshBanner> {
  const started = performance.now();
  const maxOpen = opts.maxOpen ?? 10;
  const open = new Set<Socket>();
  let lastError: string | null = null;
  let attempts = 0;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, won?: SshBanner) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearInterval(retry);
      for (const s of open) if (s !== won?.socket) s.destroy();
      open.clear();
      if (err) reject(err);
      else resolve(won!);
    };
    const attempt = () => {
      if (open.size >= maxOpen) {
        const oldest = open.values().next().value!;
        open.delete(oldest);
        oldest.destroy();
      }
      attempts++;
      // No Nagle: the SSH handshake that follows on this socket is many small messages in turn,
      // and a small write held for the last one's ACK cost the probe ~85 ms under tcg.
      const socket = connect({ host, port, noDelay: true });
      open.add(socket);
      let seen = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]);
        const banner = identificationLine(seen);
        if (banner !== null) {
          socket.off('data', onData);
          socket.pause();
          socket.removeAllListeners('error');
          socket.removeAllListeners('close');
          // Until ssh2 (or the caller) listens: an error then must not go unhandled.
          socket.on('error', () => {});
          // Unread again: ssh2 reads the identification itself.
          socket.unshift(seen);
          open.delete(socket);
          finish(null, { banner, socket, waitedMs: Math.round(performance.now() - started) });
        } else if (seen.length > MAX_PREAMBLE_BYTES) {
          lastError = `no SSH identification in the first ${seen.length} bytes`;
          open.delete(socket);
          socket.destroy();
        }
      };
      socket.on('data', onData);
      socket.on('error', (err) => (lastError = err.message));
      socket.on('close', () => open.delete(socket));
    };
    const deadline = setTimeout(() => {
      const why = lastError ? `; last error: ${lastError}` : '';
      finish(
        new SshBannerTimeoutError(
          `no SSH banner from ${host}:${port} within ${opts.deadlineMs} ms (${attempts} connections)${why}`,
        ),
      );
    }, opts.deadlineMs);
    const retry = setInterval(attempt, opts.retryEveryMs);
    attempt();
  });
}

/** The "SSH-..." line once a whole one has arrived, else null. */
function identificationLine(bytes: Buffer): string | null {
  let from = 0;
  for (;;) {
    const end = bytes.indexOf(0x0a, from);
    if (end < 0) return null;
    const line = bytes.subarray(from, end).toString('latin1').replace(/\r$/, '');
    if (line.startsWith('SSH-')) return line;
    from = end + 1;
  }
}
