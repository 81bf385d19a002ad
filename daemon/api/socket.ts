// Listening on the daemon's control socket: a path the kernel can bind, no second daemon on the
// same socket, a stale file from a crashed daemon replaced, and the socket born 0600.
import { lstat, unlink } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { unixSocketPathLimit } from '../fs/unix-socket-path.js';
import { probeUnixSocket } from '../fs/unix-socket-probe.js';

/** Throws, naming the path and its length, when the kernel could not bind it. */
export function checkSocketPath(socketPath: string, platform: NodeJS.Platform = process.platform): void {
  const bytes = Buffer.byteLength(socketPath);
  const limit = unixSocketPathLimit(platform);
  if (bytes > limit) {
    throw new Error(
      `socket path ${socketPath} is ${bytes} bytes; on ${platform} a Unix socket path may have at most ` +
        `${limit} bytes (${limit + 1} with the terminating NUL): choose a shorter state directory`,
    );
  }
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
  const probe = await probeUnixSocket(socketPath);
  switch (probe.state) {
    case 'answered':
      throw new Error(`another linuxkitd is already listening on ${socketPath}`);
    case 'silent':
      throw new Error(
        `the socket ${socketPath} exists but a connection to it did not complete within ${probe.timeoutMs} ms`,
      );
    case 'unknown':
      throw new Error(`cannot tell whether ${socketPath} is in use: ${probe.code}`);
    case 'not-a-socket':
      throw new Error(`refusing to replace ${socketPath}: it exists and is not a socket`);
    case 'refused':
      // Nobody listens: a daemon that died without cleaning up left it behind.
      await unlink(socketPath).catch(ignoreEnoent);
      return;
    case 'absent':
      return;
  }
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
