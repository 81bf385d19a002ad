// What the benchmarks share: the compiled project's modules, the median, a free loopback port.
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** A module of the compiled project (dist/), e.g. load('daemon/keys/builder-keys.js'). */
export const load = (path) => import(join(root, 'dist', path));

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A TCP port on 127.0.0.1 that nothing listens on at this moment. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
