// linuxkitctl image build|status|prune through the real CLI: a build that is a cache hit in the
// shared test cache (the images the other tests build), status listing them, prune on a cache of
// small stand-in images (kept per architecture, unused packages removed), and bad input.
import t from 'tap';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imageCacheDir, tempDir } from '../helpers/env.js';
import { testGuestImage } from '../helpers/debian-mirror.js';
import { assertFreshBuild, runCli } from './fixtures/harness.js';

assertFreshBuild();
const x86 = await testGuestImage('x86_64');

t.test(
  'image build: the shared cache already has it, so it is a cache hit with no builder run',
  async (t) => {
    const r = await runCli(['image', 'build', '--arch', 'x86_64', '--cache', imageCacheDir, '--json'], {
      HOME: await tempDir('home'),
    });
    t.equal(r.code, 0, r.stderr);
    t.match(JSON.parse(r.stdout), {
      hash: x86.hash,
      arch: 'x86_64',
      built: false,
      kernelBytes: x86.manifest.kernels[0].bytes,
      kernels: ['vmlinux', 'bzImage'],
    });
    const text = await runCli(['image', 'build', '--arch', 'x86_64', '--cache', imageCacheDir], {
      HOME: await tempDir('home'),
    });
    t.match(
      text.stdout,
      new RegExp(
        `^x86_64 guest image ${x86.hash} \\(already in the cache\\): kernel ${x86.manifest.kernelVersion.replace(/[.+]/g, '\\$&')} `,
      ),
    );
    t.match(text.stderr, /from http\S+ \(apt sources \(/, 'says which mirror, and why that one');
  },
);

t.test('image status lists the cached images with their architecture and kernel', async (t) => {
  const r = await runCli(['image', 'status', '--cache', imageCacheDir, '--json'], {
    HOME: await tempDir('home'),
  });
  t.equal(r.code, 0, r.stderr);
  const listed = JSON.parse(r.stdout) as {
    images: Array<{ hash: string; arch: string; kernelVersion: string }>;
  };
  t.match(
    listed.images.find((i) => i.hash === x86.hash),
    { arch: 'x86_64', kernelVersion: x86.manifest.kernelVersion },
  );
  const empty = await runCli(['image', 'status', '--cache', await tempDir('empty-cache')]);
  t.match(empty.stdout, /^no guest image in .* \(linuxkitctl image build makes one\)\n$/);
});

/** A small stand-in image: complete (manifest sizes match its files), made from the given packages. */
async function standIn(
  cache: string,
  hash: string,
  arch: string,
  debs: string[],
  usedAt: Date,
): Promise<void> {
  const dir = join(cache, hash);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'vmlinux'), 'k');
  await writeFile(join(dir, 'initrd'), 'ii');
  const manifest = {
    arch,
    kernelVersion: '6.1.0-test',
    cmdline: 'console=ttyS0',
    kernels: [{ file: 'vmlinux', format: 'vmlinux', bytes: 1 }],
    initrd: { file: 'initrd', compression: 'none', bytes: 2, unpackedBytes: 2 },
    modules: [],
    packages: {},
    debian: { sources: [], packages: debs.map((sha256, i) => ({ name: `p${i}`, version: '1', sha256 })) },
    builtAt: usedAt.toISOString(),
  };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  await utimes(dir, usedAt, usedAt);
}

t.test('image prune keeps the newest image of each architecture and the packages they need', async (t) => {
  const cache = await tempDir('prune-cache');
  const sha = (c: string) => c.repeat(64);
  await mkdir(join(cache, 'debs'));
  for (const c of 'abcd') await writeFile(join(cache, 'debs', `${sha(c)}.deb`), 'deb');
  const day = (n: number) => new Date(Date.UTC(2026, 0, n));
  await standIn(cache, '1'.repeat(24), 'x86_64', [sha('a'), sha('b')], day(1));
  await standIn(cache, '2'.repeat(24), 'x86_64', [sha('a')], day(3));
  await standIn(cache, '3'.repeat(24), 'aarch64', [sha('c')], day(2));
  const r = await runCli(['image', 'prune', '--cache', cache, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), {
    cacheDir: cache,
    removedImages: ['1'.repeat(24)],
    removedDebs: 2,
    freedBytes: 3 + 3 + 3,
  });
  t.same(
    (await readdir(cache)).sort(),
    ['2'.repeat(24), '3'.repeat(24), 'debs'],
    'the newest of each architecture stays',
  );
  t.same(
    (await readdir(join(cache, 'debs'))).sort(),
    [`${sha('a')}.deb`, `${sha('c')}.deb`],
    'the packages of the kept images stay',
  );
});

t.test('bad input is named', async (t) => {
  const cache = await tempDir('bad');
  const cases: Array<[string[], RegExp]> = [
    [['image'], /^linuxkitctl image: name a command: build, status, prune/],
    [['image', 'frob'], /unknown image command "frob"; expected one of build, status, prune/],
    [
      ['image', 'prune', '--keep', '0', '--cache', cache],
      /--keep must be a whole number of at least 1; got "0"/,
    ],
    [
      ['image', 'build', '--arch', 'sparc', '--cache', cache],
      /--arch must be x86_64 or aarch64; got "sparc"/,
    ],
    [['image', 'status', '--bogus'], /bogus/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, message, args.join(' '));
  }
  t.same(await readdir(cache), [], 'nothing was written');
});
