// Does something listen on this Unix socket? One probe, one reading of its answers, for the
// API socket at start, a VM's QMP socket and uninstall's check for a running daemon.
import { createConnection } from 'node:net';

export type SocketProbe =
  /** A process accepted the connection. */
  | { state: 'answered' }
  /** Neither accepted nor refused in time: a listener that is frozen or swamped holds it. */
  | { state: 'silent'; timeoutMs: number }
  /** A socket file nobody listens on: left behind by a process that died. */
  | { state: 'refused' }
  /** No file at the path. */
  | { state: 'absent' }
  /** The path is there but is no socket. */
  | { state: 'not-a-socket' }
  /** connect(2) failed otherwise (EACCES, ...): whether anyone listens cannot be told. */
  | { state: 'unknown'; code: string };

/** How long a connect to a live local socket may take: it is immediate unless the listener is stuck. */
export const SOCKET_PROBE_TIMEOUT_MS = 1000;

export function probeUnixSocket(path: string, timeoutMs = SOCKET_PROBE_TIMEOUT_MS): Promise<SocketProbe> {
  return new Promise((resolve) => {
    const conn = createConnection({ path });
    const done = (probe: SocketProbe) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(probe);
    };
    const timer = setTimeout(() => done({ state: 'silent', timeoutMs }), timeoutMs);
    conn.once('connect', () => done({ state: 'answered' }));
    conn.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done({ state: 'refused' });
      else if (err.code === 'ENOENT') done({ state: 'absent' });
      else if (err.code === 'ENOTSOCK') done({ state: 'not-a-socket' });
      else done({ state: 'unknown', code: err.code ?? err.message });
    });
  });
}

/**
 * Whether a process may hold the socket: it answered, it is silent, or we cannot tell. Callers
 * that would remove or replace what the socket belongs to must treat all three as "yes".
 */
export function mayBeListening(probe: SocketProbe): boolean {
  return probe.state === 'answered' || probe.state === 'silent' || probe.state === 'unknown';
}
