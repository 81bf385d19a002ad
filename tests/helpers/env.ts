// Shared plumbing for tests: temporary folders, free ports, and the one guest image cache that
// every test (and CI run) reuses.
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Guest images are content-addressed, so all tests share one cache in the checkout. */
export const imageCacheDir = process.env.LINUXKIT_IMAGE_CACHE ?? join(repoRoot, '.cache', 'images');

export async function tempDir(prefix: string): Promise<string> {
  // Short paths: Unix socket paths are limited to 104-108 bytes.
  return mkdtemp(join(tmpdir(), `lk-${prefix}-`));
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

/** Fails loudly (never skips) when a tool the real-VM tests need is missing. */
export function requireTool(name: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'pipe' });
  } catch {
    throw new Error(`${name} is not installed: these tests need it (run scripts/install-deps.sh as root)`);
  }
}

/** PIDs of live processes whose command line contains `needle` (zombies excluded). */
export function pidsMatching(needle: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(needle) && !/^\s*\d+\s+Z/.test(l) && !l.includes('ps -eo'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}
