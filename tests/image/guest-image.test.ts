// The guest image cache: the real image built from this machine's Debian packages (once, then
// reused from the shared cache), and the cache's rules checked with a tiny stand-in build script.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, open, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ARM64_PACKAGES_DIR,
  defaultImageCacheDir,
  ensureGuestImage,
  guestImageHash,
  guestImageInputs,
  pruneGuestImages,
  readGuestImageManifest,
  type GuestImageInputs,
} from '../../daemon/image/guest-image.js';
import { guestBootError, guestKernelCmdline } from '../../daemon/image/guest-contract.js';
import { imageCacheDir, requireTool, tempDir } from '../helpers/env.js';

const fakeGuest = fileURLToPath(new URL('./fixtures/fake-guest', import.meta.url));

t.test('the real image: built from installed packages, then a cache hit', async (t) => {
  for (const tool of ['dpkg-query', 'cpio', 'xz', 'ldd', 'busybox']) requireTool(tool);
  const logs: string[] = [];
  const first = await ensureGuestImage({ arch: 'x86_64', cacheDir: imageCacheDir, log: (m) => logs.push(m) });
  t.equal(first.dir, join(imageCacheDir, first.hash));
  t.match(first.hash, /^[0-9a-f]{24}$/);
  const [k, i] = await Promise.all([stat(first.kernel), stat(first.initrd)]);
  t.equal(first.sizeBytes, k.size + i.size);
  t.comment(`image ${first.hash}: kernel ${mib(k.size)}, initrd ${mib(i.size)} (${first.built ? 'built now' : 'cached'})`);
  t.match(first.cmdline, /console=ttyS0/);
  t.match(first.cmdline, /panic=-1/);
  if (first.built) t.match(logs.join('\n'), /built guest image/);

  const manifest = await readGuestImageManifest(first);
  t.equal(manifest.arch, 'x86_64');
  t.match(manifest.packages, { 'busybox-static': String, 'dropbear-bin': String, 'nix-bin': String });
  t.ok(manifest.modules.some((m) => m.endsWith('/virtio_net.ko')), 'virtio_net is among the modules');
  // Debian's kernel has a PVH entry, so the image carries it uncompressed as an ELF file.
  t.equal(manifest.kernel.format, 'vmlinux-pvh');
  const fd = await open(first.kernel, 'r');
  const { buffer } = await fd.read(Buffer.alloc(4), 0, 4, 0);
  await fd.close();
  t.same([...buffer], [0x7f, 0x45, 0x4c, 0x46], 'the kernel is an ELF file');

  const again = await ensureGuestImage({ arch: 'x86_64', cacheDir: imageCacheDir });
  t.equal(again.hash, first.hash, 'same inputs, same hash');
  t.equal(again.built, false, 'the second call reuses the cache');
  t.equal(again.kernel, first.kernel);

  // The image ships the cpio uncompressed (it boots faster under tcg); lz4 is the build option.
  const unpack = manifest.initrd.compression === 'none' ? 'cat "$1"' : 'lz4 -dc "$1"';
  const listing = execFileSync('sh', ['-c', `${unpack} | cpio -t --quiet`, 'sh', first.initrd], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  }).split('\n');
  for (const want of [
    'init',
    'usr/sbin/dropbear',
    'usr/bin/dropbearconvert',
    'usr/bin/nix-store',
    'usr/bin/nix-daemon',
    'usr/bin/busybox',
    'usr/lib64/ld-linux-x86-64.so.2',
    'etc/nix/nix.conf',
    'etc/acpi/PWRF/00000080',
  ]) {
    t.ok(listing.includes(want), `initrd has /${want}`);
  }
  t.ok(listing.some((p) => p.endsWith('/libnss_dns.so.2')), 'initrd has libnss_dns.so.2 (loaded by Nix at run time)');
  t.ok(listing.some((p) => p.endsWith('/libnss_files.so.2')), 'initrd has libnss_files.so.2');
  t.notOk(listing.some((p) => p.startsWith('usr/share/doc')), 'no documentation');
});

t.test('the inputs name the packages and the kernel, and the hash follows them', async (t) => {
  const inputs = await guestImageInputs({ arch: 'x86_64' });
  t.match(inputs.buildInputs, /^kernel \S+ [0-9a-f]{64}$/m);
  for (const pkg of ['busybox-static', 'dropbear-bin', 'nix-bin', 'libc6:amd64']) {
    t.match(inputs.buildInputs, new RegExp(`^package ${pkg.replace('+', '\\+')} \\S+$`, 'm'));
  }
  t.ok(inputs.files.some((f) => f.path === 'build-image.sh' && f.executable));
  t.ok(inputs.files.some((f) => f.path === 'init' && f.executable));
  t.ok(inputs.files.some((f) => f.path === 'rootfs/etc/nix/nix.conf'));

  const base: GuestImageInputs = {
    arch: 'x86_64',
    files: [
      { path: 'a', executable: false, sha256: '1'.repeat(64) },
      { path: 'b', executable: true, sha256: '2'.repeat(64) },
    ],
    buildInputs: 'package nix-bin 2.8.0\n',
  };
  const h = guestImageHash(base);
  t.equal(guestImageHash({ ...base, files: [...base.files].reverse() }), h, 'file order does not matter');
  t.not(guestImageHash({ ...base, buildInputs: 'package nix-bin 2.8.1\n' }), h, 'a package version changes it');
  t.not(guestImageHash({ ...base, files: [base.files[0], { ...base.files[1], executable: false }] }), h, 'a lost +x changes it');
  t.not(guestImageHash({ ...base, files: [base.files[0], { ...base.files[1], sha256: '3'.repeat(64) }] }), h, 'an edit changes it');
});

t.test('two concurrent builds of the same inputs both end with one complete image', async (t) => {
  const cache = await tempDir('imgcache');
  t.teardown(() => rm(cache, { recursive: true, force: true }));
  const buildLog = join(cache, '..', `${cache.split('/').pop()}.builds`);
  process.env.FAKE_BUILD_LOG = buildLog;
  t.teardown(async () => {
    delete process.env.FAKE_BUILD_LOG;
    await rm(buildLog, { force: true });
  });
  const [a, b] = await Promise.all([
    ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: fakeGuest }),
    ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: fakeGuest }),
  ]);
  t.equal(a.hash, b.hash);
  t.equal(a.dir, b.dir);
  t.equal(a.built && b.built, true, 'both ran the build (neither saw a finished image at the start)');
  t.equal((await readFile(buildLog, 'utf8')).trim().split('\n').length, 2);
  t.same(await readdir(cache), [a.hash], 'no temporary folder is left behind');
  t.equal(await readFile(a.kernel, 'utf8'), 'K');
  t.equal(a.sizeBytes, 3);
  t.equal(a.cmdline, 'console=ttyS0');

  const c = await ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: fakeGuest });
  t.same({ hash: c.hash, built: c.built }, { hash: a.hash, built: false });
});

t.test('a damaged cached image is rebuilt, and new inputs get a new folder', async (t) => {
  const cache = await tempDir('imgcache');
  const guest = await tempDir('guest');
  t.teardown(() => Promise.all([rm(cache, { recursive: true, force: true }), rm(guest, { recursive: true, force: true })]));
  await cp(fakeGuest, guest, { recursive: true });
  const first = await ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: guest });

  await rm(first.initrd);
  const messages: string[] = [];
  const repaired = await ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: guest, log: (m) => messages.push(m) });
  t.same({ hash: repaired.hash, built: repaired.built }, { hash: first.hash, built: true });
  t.match(messages.join('\n'), /incomplete; rebuilding/);
  t.equal((await stat(repaired.initrd)).size, 2);

  await writeFile(join(guest, 'init'), '#!/bin/sh\necho changed\n');
  const edited = await ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: guest });
  t.not(edited.hash, first.hash, 'an edited /init is a new image');
  t.same((await readdir(cache)).sort(), [first.hash, edited.hash].sort());
});

t.test('pruning keeps the most recently used images and the current one', async (t) => {
  const cache = await tempDir('imgcache');
  t.teardown(() => rm(cache, { recursive: true, force: true }));
  const names = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(24));
  for (const [i, name] of names.entries()) {
    await mkdir(join(cache, name));
    await writeFile(join(cache, name, 'manifest.json'), '{}');
    const used = new Date(Date.UTC(2024, 0, 1 + i));
    await utimes(join(cache, name), used, used);
  }
  await mkdir(join(cache, 'not-an-image'));
  // 'a' is the oldest but current; of the rest, the two most recently used (e, d) stay.
  const removed = await pruneGuestImages(cache, { keep: 2, current: names[0] });
  t.same(removed, [names[1], names[2]]);
  t.same((await readdir(cache)).sort(), [names[0], names[3], names[4], 'not-an-image'].sort());
});

t.test('aarch64: the arm64 packages live in the cache, guest/arm64 counts only for aarch64, and pruning keeps each arch apart', async (t) => {
  const cache = await tempDir('imgcache');
  const guest = await tempDir('guest');
  t.teardown(() => Promise.all([rm(cache, { recursive: true, force: true }), rm(guest, { recursive: true, force: true })]));
  await cp(fakeGuest, guest, { recursive: true });
  await mkdir(join(guest, 'arm64'));
  await writeFile(join(guest, 'arm64', 'fetch-packages.sh'), '#!/bin/sh\necho v1\n');

  const armInputs = await guestImageInputs({ arch: 'aarch64', guestDir: guest, cacheDir: cache });
  t.match(armInputs.buildInputs, `packages-dir ${join(cache, ARM64_PACKAGES_DIR)}\n`, 'build-image.sh gets <cache>/packages-arm64');
  t.ok(armInputs.files.some((f) => f.path === 'arm64/fetch-packages.sh'));
  const x86Inputs = await guestImageInputs({ arch: 'x86_64', guestDir: guest, cacheDir: cache });
  t.notMatch(x86Inputs.buildInputs, /packages-dir/);
  t.notOk(x86Inputs.files.some((f) => f.path.startsWith('arm64/')), 'the x86_64 image is not made from guest/arm64');

  const x86 = await ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: guest });
  const arm = await ensureGuestImage({ arch: 'aarch64', cacheDir: cache, guestDir: guest });
  t.not(arm.hash, x86.hash);
  t.equal((await readGuestImageManifest(arm)).arch, 'aarch64');
  await writeFile(join(guest, 'arm64', 'fetch-packages.sh'), '#!/bin/sh\necho v2\n');
  t.equal((await ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: guest })).hash, x86.hash, 'an arm64 edit leaves the x86_64 image');
  const arm2 = await ensureGuestImage({ arch: 'aarch64', cacheDir: cache, guestDir: guest });
  t.not(arm2.hash, arm.hash, 'and makes a new aarch64 one');

  // Four more aarch64 images: the oldest aarch64 ones go, the x86_64 one stays however old.
  const old = new Date(Date.UTC(2020, 0, 1));
  await utimes(x86.dir, old, old);
  for (const v of ['v3', 'v4', 'v5', 'v6']) {
    await writeFile(join(guest, 'arm64', 'fetch-packages.sh'), `#!/bin/sh\necho ${v}\n`);
    await ensureGuestImage({ arch: 'aarch64', cacheDir: cache, guestDir: guest });
  }
  const left = await readdir(cache);
  t.ok(left.includes(x86.hash), 'the x86_64 image is not pruned by aarch64 builds');
  t.notOk(left.includes(arm.hash), 'the oldest aarch64 image is');
  t.equal(left.filter((n) => /^[0-9a-f]{24}$/.test(n)).length, 4, 'x86_64 + the current aarch64 + 2 more');
});

t.test('a failing build names the script and its error', async (t) => {
  const cache = await tempDir('imgcache');
  const guest = await tempDir('guest');
  t.teardown(() => Promise.all([rm(cache, { recursive: true, force: true }), rm(guest, { recursive: true, force: true })]));
  await writeFile(
    join(guest, 'build-image.sh'),
    '[ "$1" = --print-inputs ] && { echo "arch x86_64"; exit 0; }\necho "build-image: error: busybox is missing" >&2\nexit 1\n',
  );
  await t.rejects(ensureGuestImage({ arch: 'x86_64', cacheDir: cache, guestDir: guest }), {
    message: /build-image\.sh .* failed: build-image: error: busybox is missing/,
  });
  t.same(await readdir(cache), [], 'the failed build left nothing in the cache');
  await t.rejects(
    ensureGuestImage({ arch: 'riscv64' as 'x86_64', cacheDir: cache, guestDir: guest }),
    /guest image arch "riscv64" is not supported; expected x86_64 or aarch64/,
  );
});

t.test('the default cache folder follows LINUXKIT_IMAGE_CACHE, then the platform', async (t) => {
  t.equal(defaultImageCacheDir({ LINUXKIT_IMAGE_CACHE: '/x/images', HOME: '/h' }, 'linux'), '/x/images');
  t.equal(defaultImageCacheDir({ HOME: '/home/u' }, 'linux'), '/home/u/.cache/linuxkit-nix/images');
  t.equal(defaultImageCacheDir({ HOME: '/Users/u' }, 'darwin'), '/Users/u/Library/Caches/linuxkit-nix/images');
});

t.test('per-boot kernel switches and the guest error line', async (t) => {
  const base = 'console=ttyS0 quiet panic=-1';
  t.equal(guestKernelCmdline(base), base);
  t.equal(guestKernelCmdline(base, { disk: '/dev/vda' }), `${base} linuxkit.disk=/dev/vda`);
  t.equal(guestKernelCmdline(base, { storeSize: '75%' }), `${base} linuxkit.store_size=75%`);
  t.throws(() => guestKernelCmdline(base, { disk: 'vda' }), /disk must be a device path like \/dev\/vda; got "vda"/);
  t.throws(() => guestKernelCmdline(base, { storeSize: '1 GB' }), /storeSize must be a tmpfs size/);
  t.equal(
    guestBootError('[ 1.0] boot\nlinuxkit-nix: error: no client key handed in (fw_cfg opt/linuxkit/authorized_keys)\n'),
    'no client key handed in (fw_cfg opt/linuxkit/authorized_keys)',
  );
  t.equal(guestBootError('linuxkit-nix: ssh ready\n'), null);
});

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
