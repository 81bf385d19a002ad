// The aarch64 guest image, built for real by the TypeScript builder from Debian's arm64 packages
// (once into the shared cache, then reused): an arm64 kernel Image, arm64
// programs and libraries, the same /init and rootfs as x86_64, console on ttyAMA0. Booting it is
// tests/e2e/aarch64-builder.test.ts's job.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { testGuestImage } from '../helpers/debian-mirror.js';
import { repoRoot, requireTool } from '../helpers/env.js';

// cpio only unpacks the image here for inspection; the builder itself needs none of these tools.
requireTool('cpio');

const image = await testGuestImage('aarch64');
const { manifest } = image;

async function bytesAt(file: string, offset: number, length: number): Promise<Buffer> {
  const fd = await open(file, 'r');
  try {
    const { buffer } = await fd.read(Buffer.alloc(length), 0, length, offset);
    return buffer;
  } finally {
    await fd.close();
  }
}

t.test('an arm64 kernel Image and the cloud flavour, console on the PL011', async (t) => {
  t.equal(manifest.arch, 'aarch64');
  t.same(
    manifest.kernels.map((k) => k.format),
    ['Image'],
  );
  t.equal(image.kernels.Image, image.kernel);
  t.match(manifest.kernelVersion, /-cloud-arm64$/);
  t.equal((await bytesAt(image.kernel, 56, 4)).toString('latin1'), 'ARM\x64', 'arm64 Image magic at byte 56');
  t.match(image.cmdline, /(^| )console=ttyAMA0( |$)/);
  t.match(image.cmdline, /(^| )panic=-1( |$)/);
  t.notMatch(image.cmdline, /tsc=|lpj=/, 'no x86-only switches');
  t.ok(
    manifest.modules.some((m) => m.endsWith('/virtio_net.ko')),
    'virtio_net among the modules',
  );
  t.ok(
    manifest.modules.some((m) => m.endsWith('/qemu_fw_cfg.ko')),
    'qemu_fw_cfg (the keys) among the modules',
  );
  t.notOk(
    manifest.modules.some((m) => m.endsWith('/ext4.ko')),
    'ext4 is built into this kernel, so it is not loaded as a module',
  );
  t.comment(
    `aarch64 image ${image.hash}: kernel ${manifest.kernels[0].bytes} bytes, initrd ${manifest.initrd.bytes} bytes (${image.built ? 'built now' : 'cached'})`,
  );
});

t.test(
  'the manifest records every resolved package with its version and SHA256; a second call is a cache hit',
  async (t) => {
    const names = manifest.debian.packages.map((p) => p.name);
    for (const pkg of [
      'busybox-static',
      'dropbear-bin',
      'nix-bin',
      'e2fsprogs',
      'libc6',
      'libssl3',
      'libstdc++6',
    ])
      t.ok(names.includes(pkg), `${pkg} is resolved`);
    t.ok(
      names.some((n) => /^linux-image-\S+-cloud-arm64$/.test(n)),
      `the cloud kernel package is resolved (${names.filter((n) => n.startsWith('linux-image')).join(', ')})`,
    );
    for (const p of manifest.debian.packages) t.match(p, { version: /\S/, sha256: /^[0-9a-f]{64}$/ }, p.name);
    const again = await testGuestImage('aarch64');
    t.same(
      { hash: again.hash, built: again.built },
      { hash: image.hash, built: false },
      'a second call is a cache hit',
    );
  },
);

t.test('arm64 programs and libraries, the same /init and rootfs as x86_64', async (t) => {
  const root = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
  t.teardown(() => execFileSync('rm', ['-rf', root]));
  execFileSync('sh', ['-c', 'cd "$1" && cpio -id --quiet < "$2"', 'sh', root, image.initrd], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const machine = async (rel: string) => (await bytesAt(join(root, rel), 18, 2)).readUInt16LE(0);
  const EM_AARCH64 = 0xb7;
  for (const rel of [
    'usr/bin/nix',
    'usr/bin/busybox',
    'usr/sbin/dropbear',
    'usr/bin/dropbearconvert',
    'usr/sbin/mke2fs',
    'usr/sbin/resize2fs',
    'usr/lib/ld-linux-aarch64.so.1',
  ]) {
    t.equal(await machine(rel), EM_AARCH64, `${rel} is an aarch64 ELF file`);
  }
  const libs = execFileSync('find', [join(root, 'usr/lib/aarch64-linux-gnu'), '-name', '*.so*'], {
    encoding: 'utf8',
  });
  for (const lib of [
    'libc.so.6',
    'libnss_dns.so.2',
    'libnss_files.so.2',
    'libcrypto.so.3',
    'libsodium.so.23',
  ])
    t.match(libs, `/${lib}\n`);
  t.equal(
    await readFile(join(root, 'init'), 'utf8'),
    await readFile(join(repoRoot, 'guest/init'), 'utf8'),
    'the same /init',
  );
  t.equal(
    await readFile(join(root, 'etc/acpi/PWRF/00000080'), 'utf8'),
    await readFile(join(repoRoot, 'guest/rootfs/etc/acpi/PWRF/00000080'), 'utf8'),
    'the same power-button handler',
  );
  const link = (rel: string) => execFileSync('readlink', [join(root, rel)], { encoding: 'utf8' }).trim();
  t.equal(link('usr/bin/sh'), '/usr/bin/busybox', 'the shell is busybox');
  for (const applet of ['usleep', 'udhcpc', 'insmod', 'poweroff', 'od', 'syslogd'])
    t.equal(link(`usr/bin/${applet}`), '/usr/bin/busybox', `${applet} applet`);
  t.equal(link('usr/sbin/modprobe'), '/usr/bin/busybox', 'modprobe where the kernel looks for it');
  t.equal(link('usr/bin/nix-store'), 'nix');
  t.equal(link('bin'), 'usr/bin', 'usr-merged like x86_64');
  t.equal((await readFile(join(root, 'etc/linuxkit/kernel-version'), 'utf8')).trim(), manifest.kernelVersion);
  const list = async (name: string) =>
    (await readFile(join(root, `etc/linuxkit/modules.${name}`), 'utf8')).trim().split('\n');
  const netModules = await list('net');
  t.ok(
    netModules.indexOf('kernel/drivers/virtio/virtio.ko') <
      netModules.indexOf('kernel/drivers/net/virtio_net.ko'),
    'dependencies load first',
  );
  const modules = [...netModules, ...(await list('base'))];
  t.ok(modules.includes('kernel/drivers/virtio/virtio_balloon.ko'), 'the rest after the network');
  for (const m of modules)
    t.equal(await machine(`usr/lib/modules/${manifest.kernelVersion}/${m}`), EM_AARCH64, m);
});
