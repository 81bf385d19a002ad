// Listening on the daemon's control socket: a path the kernel can bind, no second daemon on the
// same socket, a stale file from a crashed daemon replaced, and the socket born 0600.
import { lstat, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** sizeof(sockaddr_un.sun_path), which includes the terminating NUL. */
export function socketPathLimit(platform: NodeJS.Platform): number {
  return platform === 'darwin' || platform === 'freebsd' || platform === 'openbsd' ? 104 : 108;
}

/** Throws, naming the path and its length, when the kernel could not bind it. */
export function checkSocketPath(socketPath: string, platform: NodeJS.Platform = process.platform): void {
  const bytes = Buffer.byteLength(socketPath);
  const limit = socketPathLimit(platform);
  if (bytes + 1 > limit) {
    throw new Error(
      `socket path ${socketPath} is ${bytes} bytes; on ${platform} a Unix socket path may have at most ` +
        `${limit - 1} bytes (${limit} with the terminating NUL): choose a shorter state directory`,
    );
  }
}

type Probe = 'answered' | 'refused' | 'absent';

/** Connects to an existing socket file to learn whether a daemon still listens on it. */
function probeSocket(socketPath: string, timeoutMs: number): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const conn = createConnection({ path: socketPath });
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`the socket ${socketPath} exists but a connection to it did not complete within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.once('connect', () => {
      clearTimeout(timer);
      conn.destroy();
      resolve('answered');
    });
    conn.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED') resolve('refused');
      else if (err.code === 'ENOENT') resolve('absent');
      else reject(new Error(`cannot tell whether ${socketPath} is in use: ${err.code ?? err.message}`));
    });
  });
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new Error(`refusing to replace ${socketPath}: it exists and is not a socket`);
  }
  const probe = await probeSocket(socketPath, 2000);
  if (probe === 'answered') {
    throw new Error(`another linuxkitd is already listening on ${socketPath}`);
  }
  // Nobody listens: a daemon that died without cleaning up left it behind.
  if (probe === 'refused') await unlink(socketPath).catch(ignoreEnoent);
}

function ignoreEnoent(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/**
 * Binds `app` to `socketPath` with mode 0600. Single-instance safety between two daemons starting
 * at the same moment is the daemon lock's job; this only refuses a socket that answers.
 */
export async function listenOnUnixSocket(app: FastifyInstance, socketPath: string): Promise<void> {
  checkSocketPath(socketPath);
  await removeStaleSocket(socketPath);
  // Plugins load first, so that between setting the umask and the bind only a few microtasks run:
  // the umask is process-wide and anything else creating files meanwhile would get it too.
  await app.ready();
  // bind(2) creates the socket file with 0777 & ~umask: 0600 from birth, no window before a chmod.
  const previousUmask = process.umask(0o177);
  try {
    await app.listen({ path: socketPath });
  } catch (err) {
    throw new Error(`cannot listen on ${socketPath}: ${(err as Error).message}`);
  } finally {
    process.umask(previousUmask);
  }
}
