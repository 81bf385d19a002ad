// The Debian guest image built for real, from the mirror this machine's apt uses (through a local
// copy that counts requests and can tamper with one file), by the builder running under a PATH
// that holds node and nothing else.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { link, mkdir, readdir, readFile, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { aptMirrors } from '../../daemon/image/debian/apt-sources.js';
import type { DebianImageManifest } from '../../daemon/image/debian/cached-image.js';
import { imageCacheDir, repoRoot, tempDir } from '../helpers/env.js';
import { startLocalMirror } from './local-mirror.js';

async function aptSourceTexts(): Promise<string[]> {
  const texts: string[] = [];
  for (const f of [
    '/etc/apt/sources.list',
    ...(await readdir('/etc/apt/sources.list.d').catch(() => [] as string[])).map(
      (n) => `/etc/apt/sources.list.d/${n}`,
    ),
  ]) {
    if (/\.(list|sources)$/.test(f)) texts.push(await readFile(f, 'utf8').catch(() => ''));
  }
  return texts;
}

const upstream = aptMirrors(await aptSourceTexts());
if (!upstream.mirror || !upstream.securityMirror)
  throw new Error(
    `this machine's apt sources name no Debian mirror and security mirror (found ${JSON.stringify(upstream)})`,
  );
const work = await tempDir('debian-image');
// The mirror copy is kept beside the shared image cache: a warm run reads the archive from disk,
// a cold one fills it from the real mirror. The builders' own caches are always cold.
const mirror = await startLocalMirror(
  { mirror: upstream.mirror, securityMirror: upstream.securityMirror },
  join(imageCacheDir, '..', 'mirror-copy'),
);
t.teardown(() => mirror.close());

// A PATH with node alone: the builder must need no Debian tool, nor xz, lz4 or cpio.
const nodeOnly = join(work, 'bin');
await mkdir(nodeOnly);
await symlink(process.execPath, join(nodeOnly, 'node'));
const env = { HOME: work, PATH: nodeOnly };

interface BuildResult {
  code: number;
  stderr: string;
  out: { hash: string; dir: string; built: boolean; seconds: number; manifest: DebianImageManifest } | null;
}

function build(arch: string, cache: string): Promise<BuildResult> {
  const args = [
    ...process.execArgv,
    join(repoRoot, 'daemon/image/debian/cli.ts'),
    '--arch',
    arch,
    '--cache',
    cache,
    '--mirror',
    mirror.mirror,
    '--security-mirror',
    mirror.securityMirror,
  ];
  return new Promise((ok) => {
    const child = spawn(process.execPath, args, { env, cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) =>
      ok({ code: code ?? -1, stderr, out: code === 0 ? JSON.parse(stdout) : null }),
    );
  });
}

/** Every file under `dir` with its size, for comparing a cache before and after. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile())
      out.push(
        `${join(e.parentPath, e.name).slice(dir.length)} ${(await stat(join(e.parentPath, e.name))).size}`,
      );
  }
  return out.sort();
}

t.test('the node-only PATH reaches none of the tools the shell builder used', async (t) => {
  t.same(await readdir(nodeOnly), ['node']);
  for (const tool of ['dpkg', 'apt-get', 'cpio', 'readelf', 'depmod', 'xz', 'lz4', 'sh']) {
    const r = spawnSync(tool, ['--version'], { env });
    t.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'ENOENT', `${tool} is not reachable`);
  }
});

const caches: Record<string, string> = {};
for (const arch of ['x86_64', 'aarch64']) {
  t.test(`${arch}: a cold build, then a warm one that asks the mirror nothing`, async (t) => {
    const cache = join(work, `cache-${arch}`);
    caches[arch] = cache;
    const cold = await build(arch, cache);
    t.equal(cold.code, 0, cold.stderr.split('\n').slice(-5).join('\n'));
    const m = cold.out!.manifest;
    t.equal(m.arch, arch);
    t.ok(
      m.packages['nix-bin'] && m.packages['busybox-static'] && m.packages['dropbear-bin'],
      'nix, busybox and dropbear are in',
    );
    t.ok(
      m.debian.packages.every((p: { sha256: string }) => /^[0-9a-f]{64}$/.test(p.sha256)),
      'every package with its SHA256',
    );
    t.same(
      m.kernels.map((k: { format: string }) => k.format),
      arch === 'x86_64' ? ['vmlinux', 'bzImage'] : ['Image'],
      "the kernel forms, QEMU's first",
    );
    const initrd = await readFile(join(cold.out!.dir, 'initrd'));
    t.equal(initrd.subarray(0, 6).toString(), '070701', 'a cpio newc initramfs');
    const triplet = arch === 'x86_64' ? 'x86_64-linux-gnu' : 'aarch64-linux-gnu';
    for (const name of [
      'init',
      'usr/bin/nix',
      'usr/bin/nix-daemon',
      'usr/sbin/dropbear',
      'usr/sbin/mke2fs',
      'usr/sbin/resize2fs',
      `usr/lib/${triplet}/libnss_dns.so.2`,
      'etc/linuxkit/modules.net',
      'etc/linuxkit/modules.base',
      'etc/mke2fs.conf',
    ]) {
      t.ok(initrd.includes(Buffer.from(`${name}\0`)), `${name} is in the initramfs`);
    }
    t.comment(
      `${arch} cold build: ${cold.out!.seconds} s; ${m.kernels.map((k: { format: string; bytes: number }) => `${k.format} ${(k.bytes / 2 ** 20).toFixed(1)} MiB`).join(', ')}, initrd ${m.initrd.bytes} bytes (${(m.initrd.bytes / 2 ** 20).toFixed(1)} MiB), ${m.debian.packages.length} packages, ${mirror.requests.length} requests so far`,
    );

    const before = mirror.requests.length;
    const warm = await build(arch, cache);
    t.equal(warm.code, 0, warm.stderr);
    t.equal(warm.out!.hash, cold.out!.hash, 'the same image');
    t.equal(warm.out!.built, false, 'taken from the cache');
    t.equal(mirror.requests.length - before, 0, 'no request to the mirror');
    t.comment(`${arch} warm build: ${warm.out!.seconds} s`);
  });
}

t.test(
  'one byte changed in InRelease, Packages or a .deb fails the build naming that file; the cache is left as it was',
  async (t) => {
    const cold = JSON.parse(
      await readFile(
        join(
          caches.x86_64,
          (await readdir(caches.x86_64)).find((n) => /^[0-9a-f]{24}$/.test(n))!,
          'manifest.json',
        ),
        'utf8',
      ),
    );
    const busybox = cold.debian.packages.find((p: { name: string }) => p.name === 'busybox-static');
    const tampered = [
      '/debian/dists/bookworm/InRelease',
      mirror.requests.find((p) =>
        /^\/debian\/dists\/bookworm\/main\/binary-amd64\/Packages\.(xz|gz)$/.test(p),
      )!,
      `/debian/${busybox.filename}`,
    ];
    for (const path of tampered) {
      // A cache holding every verified .deb of the build but the one to be tampered with.
      const cache = join(work, `tamper-${tampered.indexOf(path)}`);
      await mkdir(join(cache, 'debs'), { recursive: true });
      for (const name of await readdir(join(caches.x86_64, 'debs'))) {
        if (name !== `${busybox.sha256}.deb`)
          await link(join(caches.x86_64, 'debs', name), join(cache, 'debs', name));
      }
      const before = await listing(cache);
      mirror.tamper = path;
      const r = await build('x86_64', cache);
      mirror.tamper = null;
      t.not(r.code, 0, `${path}: the build fails`);
      t.match(r.stderr, path, `${path}: the error names it`);
      t.same(await listing(cache), before, `${path}: the cache is as it was`);
      t.comment(r.stderr.trim().split('\n').pop()!);
    }
  },
);
