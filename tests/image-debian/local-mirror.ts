// A local stand-in for the Debian mirrors: serves /debian/… and /debian-security/… from a copy
// (kept between runs by the caller's choice of folder) it fills from the real mirrors on first request, counts every request it answers, and can
// serve one file with one byte changed (the tamper tests).
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';

export interface LocalMirror {
  /** Base URLs to give the builder. */
  mirror: string;
  securityMirror: string;
  requests: string[];
  /** URL path (e.g. /debian/dists/bookworm/InRelease) served with one byte changed; null for none. */
  tamper: string | null;
  close(): Promise<void>;
}

const INDEX_MAX_AGE_MS = 12 * 60 * 60 * 1000;

export async function startLocalMirror(
  upstream: { mirror: string; securityMirror: string },
  copyDir: string,
): Promise<LocalMirror> {
  const bases: Record<string, string> = {
    debian: upstream.mirror,
    'debian-security': upstream.securityMirror,
  };
  const state: LocalMirror = {
    mirror: '',
    securityMirror: '',
    requests: [],
    tamper: null,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    state.requests.push(path);
    void (async () => {
      const [, archive, ...rest] = path.split('/');
      const base = bases[archive];
      if (!base || rest.some((p) => p === '..')) {
        res.writeHead(404).end();
        return;
      }
      const local = join(copyDir, archive, ...rest);
      // Index files (dists/) are fetched again once a copy is half a day old: a kept copy must not
      // point at packages the real mirror has since dropped. Packages themselves never change.
      const stale =
        rest[0] === 'dists' &&
        (await stat(local).then(
          (s) => Date.now() - s.mtimeMs > INDEX_MAX_AGE_MS,
          () => true,
        ));
      let data = stale ? null : await readFile(local).catch(() => null);
      if (!data) {
        const upstreamRes = await fetch(`${base}/${rest.join('/')}`);
        if (upstreamRes.status !== 200) {
          res.writeHead(upstreamRes.status).end();
          return;
        }
        data = Buffer.from(await upstreamRes.arrayBuffer());
        await mkdir(dirname(local), { recursive: true });
        const tmp = `${local}.${process.pid}.tmp`;
        await writeFile(tmp, data);
        await rename(tmp, local);
      }
      if (state.tamper === path) {
        data = Buffer.from(data);
        data[Math.floor(data.length / 2)] ^= 0x01;
      }
      res.writeHead(200, { 'content-length': data.length }).end(data);
    })().catch((err: Error) => {
      res.writeHead(502).end(err.message);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  state.mirror = `http://127.0.0.1:${port}/debian`;
  state.securityMirror = `http://127.0.0.1:${port}/debian-security`;
  state.close = () => new Promise((ok) => server.close(() => ok()));
  return state;
}
