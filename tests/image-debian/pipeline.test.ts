// The pure steps of the Debian image pipeline, each on a small input made here.
import t from 'tap';
import { readFileSync } from 'node:fs';
import * as openpgp from 'openpgp';
import { aptMirrors } from '../../daemon/image/debian/apt-sources.js';
import { parseDepends, releaseChecksums, verifyInRelease } from '../../daemon/image/debian/archive.js';
import { parseAr } from '../../daemon/image/debian/ar.js';
import { busyboxApplets } from '../../daemon/image/debian/busybox.js';
import { guessLibraryPackage } from '../../daemon/image/debian/closure.js';
import { writeCpioNewc } from '../../daemon/image/debian/cpio.js';
import { parseDeb822 } from '../../daemon/image/debian/deb822.js';
import { EM_X86_64, EM_AARCH64, parseElf } from '../../daemon/image/debian/elf.js';
import { initramfsEntries, guestPath } from '../../daemon/image/debian/initramfs.js';
import { arm64Image } from '../../daemon/image/debian/kernel-form.js';
import { moduleLoadOrder, moduleName } from '../../daemon/image/debian/modules.js';
import { mergeSuites } from '../../daemon/image/debian/package-index.js';
import { suiteSources } from '../../daemon/image/debian/settings.js';
import { compareDebianVersions } from '../../daemon/image/debian/version.js';
import { gzipSync } from 'node:zlib';
import type { IndexedPackage } from '../../daemon/image/debian/archive.js';

t.test('Debian versions order as dpkg orders them', async (t) => {
  const ascending = [
    '1.0~rc1',
    '1.0',
    '1.0-1',
    '1.0-1+deb12u1',
    '1.0-2',
    '1.0a',
    '1.1',
    '1:0.1',
    '6.1.0-57',
    '6.1.0-100',
  ];
  for (let i = 0; i + 1 < ascending.length - 2; i++)
    t.ok(compareDebianVersions(ascending[i], ascending[i + 1]) < 0, `${ascending[i]} < ${ascending[i + 1]}`);
  t.ok(compareDebianVersions('6.1.0-57', '6.1.0-100') < 0, 'numbers compare as numbers');
  t.equal(compareDebianVersions('2.38.1-5+deb12u3', '2.38.1-5+deb12u3'), 0);
  t.ok(compareDebianVersions('1:0.1', '9.9') > 0, 'the epoch wins');
});

t.test('deb822 paragraphs, continuation lines and Depends', async (t) => {
  const [a, b] = parseDeb822(
    'Package: a\nDepends: libc6 (>= 2.36), libfoo1 | libbar2:any\nDescription: x\n more\n\nPackage: b\n',
  );
  t.same(a, { Package: 'a', Depends: 'libc6 (>= 2.36), libfoo1 | libbar2:any', Description: 'x\nmore' });
  t.same(b, { Package: 'b' });
  t.same(parseDepends(a.Depends), [['libc6'], ['libfoo1', 'libbar2']]);
  t.throws(() => parseDeb822('no colon here'), /neither "Field: value"/);
  const sums = releaseChecksums(
    'Suite: x\nSHA256:\n ' + 'a'.repeat(64) + ' 12 main/binary-amd64/Packages.xz\n',
  );
  t.same(sums.get('main/binary-amd64/Packages.xz'), { sha256: 'a'.repeat(64), size: 12 });
});

t.test('the newest version of a package across suites wins', async (t) => {
  const pkg = (version: string, suite: string) => ({ name: 'libssl3', version, suite }) as IndexedPackage;
  const index = mergeSuites([
    [pkg('3.0.15-1~deb12u1', 'bookworm')],
    [pkg('3.0.17-1~deb12u2', 'bookworm-security')],
    [pkg('3.0.16-1~deb12u1', 'bookworm-updates')],
  ]);
  t.equal(index.get('libssl3')!.suite, 'bookworm-security');
});

t.test('mirrors from apt sources, either format; suites map to their archive', async (t) => {
  const deb822 =
    'Types: deb\n# a comment\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n\nTypes: deb\nURIs: http://m.example/debian-security/\nSuites: bookworm-security\n';
  t.same(aptMirrors([deb822]), {
    mirror: 'http://m.example/debian',
    securityMirror: 'http://m.example/debian-security',
  });
  t.same(
    aptMirrors([
      'deb [arch=amd64] http://a.example/debian bookworm main\ndeb http://a.example/debian-security bookworm-security main\n',
    ]),
    {
      mirror: 'http://a.example/debian',
      securityMirror: 'http://a.example/debian-security',
    },
  );
  const s = suiteSources({
    mirror: 'http://m/debian/',
    securityMirror: 'http://m/debian-security',
    suites: ['bookworm', 'bookworm-security'],
  });
  t.same(s, [
    { baseUrl: 'http://m/debian', suite: 'bookworm' },
    { baseUrl: 'http://m/debian-security', suite: 'bookworm-security' },
  ]);
  const snap = suiteSources({
    mirror: 'x',
    securityMirror: 'y',
    suites: ['bookworm-security'],
    snapshot: 'http://s/archive/{archive}/20250520T000000Z',
  });
  t.same(snap, [
    { baseUrl: 'http://s/archive/debian-security/20250520T000000Z', suite: 'bookworm-security' },
  ]);
  t.throws(
    () => suiteSources({ mirror: 'ftp://m', securityMirror: 'x', suites: ['bookworm'] }),
    /must start with http/,
  );
});

t.test('InRelease verifies only with a good signature by a key of the keyring', async (t) => {
  const { privateKey, publicKey } = await openpgp.generateKey({
    userIDs: [{ name: 'archive' }],
    format: 'armored',
  });
  const other = await openpgp.generateKey({ userIDs: [{ name: 'other' }], format: 'armored' });
  const text = 'Suite: bookworm\nSHA256:\n ' + 'b'.repeat(64) + ' 1 main/binary-amd64/Packages.xz\n';
  const signed = await openpgp.sign({
    message: await openpgp.createCleartextMessage({ text }),
    signingKeys: await openpgp.readPrivateKey({ armoredKey: privateKey }),
  });
  t.match(await verifyInRelease(signed, publicKey, 'InRelease'), /Suite: bookworm/);
  await t.rejects(
    verifyInRelease(signed.replace('Suite: bookworm', 'Suite: bookwork'), publicKey, 'http://m/InRelease'),
    /http:\/\/m\/InRelease: bad OpenPGP signature/,
  );
  await t.rejects(
    verifyInRelease(signed, other.publicKey, 'http://m/InRelease'),
    /http:\/\/m\/InRelease is signed by none of the archive keys/,
  );
  await t.rejects(verifyInRelease(text, publicKey, 'http://m/InRelease'), /not an OpenPGP clear-signed file/);
  const debianKeys = await openpgp.readKeys({
    armoredKeys: readFileSync(
      new URL('../../guest/keys/debian-bookworm-archive.asc', import.meta.url),
      'utf8',
    ),
  });
  t.equal(debianKeys.length, 3, 'the repository keeps the bookworm release, archive and security keys');
});

t.test('ar members, cpio newc records', async (t) => {
  const member = (name: string, data: string) =>
    Buffer.concat([
      Buffer.from(
        `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`,
      ),
      Buffer.from(data),
      Buffer.alloc(data.length % 2, '\n'),
    ]);
  const ar = Buffer.concat([
    Buffer.from('!<arch>\n'),
    member('debian-binary', '2.0\n'),
    member('data.tar.xz/', 'abc'),
  ]);
  t.same(
    parseAr(ar).map((m) => [m.name, m.data.toString()]),
    [
      ['debian-binary', '2.0\n'],
      ['data.tar.xz', 'abc'],
    ],
  );
  t.throws(() => parseAr(Buffer.from('nope'), 'x.deb'), /x.deb is not an ar archive/);

  const cpio = writeCpioNewc([
    { path: 'init', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\n') },
    { path: 'bin', type: 'symlink', target: 'usr/bin' },
  ]);
  const header = cpio.subarray(0, 110).toString();
  t.equal(header.slice(0, 6), '070701');
  t.equal(parseInt(header.slice(14, 22), 16), 0o100755, 'a regular file, mode 755');
  t.equal(parseInt(header.slice(54, 62), 16), 10, 'its size');
  t.equal(cpio.length % 4, 0, 'padded to 4 bytes');
  t.ok(cpio.includes(Buffer.from('TRAILER!!!\0')), 'closed by the trailer');
});

t.test('ELF: the machine and DT_NEEDED of a real program', async (t) => {
  const elf = parseElf(readFileSync(process.execPath), process.execPath);
  t.ok([EM_X86_64, EM_AARCH64].includes(elf.machine));
  t.ok(elf.needed.includes('libc.so.6'), `node needs libc.so.6 (${elf.needed.join(', ')})`);
  t.match(elf.interpreter, /ld-linux/);
  t.throws(() => parseElf(Buffer.from('#!/bin/sh'), 'init'), /init is not an ELF file/);
});

t.test('library package names from sonames (Debian policy 8.1)', async (t) => {
  t.equal(guessLibraryPackage('libssl.so.3'), 'libssl3');
  t.equal(guessLibraryPackage('libsqlite3.so.0'), 'libsqlite3-0');
  t.equal(guessLibraryPackage('libstdc++.so.6'), 'libstdc++6');
  t.equal(guessLibraryPackage('libboost_context.so.1.74.0'), 'libboost-context1.74.0');
});

t.test('modules load dependencies first, each once, built-ins skipped', async (t) => {
  const deps: Record<string, string[]> = {
    virtio_net: ['net_failover', 'virtio'],
    net_failover: ['failover'],
    failover: [],
    virtio: [],
    virtio_blk: ['virtio'],
    ext4: ['jbd2'],
  };
  const modules = new Map(
    Object.entries(deps).map(([n, d]) => [n, { path: `kernel/${n}.ko`, depends: async () => d }]),
  );
  const seen = new Set<string>();
  t.same(await moduleLoadOrder(['virtio-net'], modules, new Set(), seen, 'k'), [
    'kernel/failover.ko',
    'kernel/net_failover.ko',
    'kernel/virtio.ko',
    'kernel/virtio_net.ko',
  ]);
  t.same(
    await moduleLoadOrder(['virtio_blk', 'crc32c_generic'], modules, new Set(['crc32c_generic']), seen, 'k'),
    ['kernel/virtio_blk.ko'],
  );
  await t.rejects(
    moduleLoadOrder(['ext4'], modules, new Set(), seen, '6.1'),
    /kernel module jbd2 is neither in the kernel package nor built into kernel 6.1/,
  );
  t.equal(moduleName('kernel/drivers/char/hw_random/virtio-rng.ko.xz'), 'virtio_rng');
});

t.test('busybox applets from its name table; the initramfs tree', async (t) => {
  const names = [
    '[',
    '[[',
    ...Array.from({ length: 120 }, (_, i) => `a${String(i).padStart(3, '0')}`),
    'modprobe',
    'sh',
  ];
  const binary = Buffer.concat([
    Buffer.from('\x7fELF junk\0'),
    Buffer.from(names.join('\0')),
    Buffer.from('\0\x01\x02'),
  ]);
  const applets = busyboxApplets(binary);
  t.same(applets, names);
  t.throws(() => busyboxApplets(Buffer.from('nothing')), /cannot find the applet table/);

  t.equal(guestPath('lib/x86_64-linux-gnu/libc.so.6'), 'usr/lib/x86_64-linux-gnu/libc.so.6');
  const entries = initramfsEntries({
    files: [{ path: 'sbin/mke2fs', data: Buffer.from('m'), mode: 0o755 }],
    nixLinks: ['nix-store'],
    busybox: binary,
    applets: ['sh', 'mke2fs', 'modprobe'],
    kernelVersion: '6.1',
    modules: new Map([
      ['kernel/virtio.ko', Buffer.from('ko')],
      ['kernel/virtio_rng.ko', Buffer.from('ko')],
      ['kernel/vsock.ko.xz', Buffer.from('ko')],
    ]),
    netModules: ['kernel/virtio.ko'],
    baseModules: ['kernel/virtio_rng.ko'],
    diskModules: [],
    vsockModules: ['kernel/vsock.ko.xz'],
    rootfs: [{ path: 'etc/shadow', data: Buffer.from('root:*:'), mode: 0o644 }],
    init: Buffer.from('#!/bin/sh\n'),
  });
  const by = new Map(entries.map((e) => [e.path, e]));
  t.same(by.get('usr/sbin/mke2fs')?.type, 'file', 'mke2fs the program, not the applet');
  t.same(by.get('usr/bin/sh'), { path: 'usr/bin/sh', type: 'symlink', target: '/usr/bin/busybox' });
  t.same(by.get('usr/sbin/modprobe'), {
    path: 'usr/sbin/modprobe',
    type: 'symlink',
    target: '/usr/bin/busybox',
  });
  t.same(by.get('usr/bin/nix-store'), { path: 'usr/bin/nix-store', type: 'symlink', target: 'nix' });
  t.same(by.get('bin'), { path: 'bin', type: 'symlink', target: 'usr/bin' });
  t.equal((by.get('etc/shadow') as { mode: number }).mode, 0o600);
  t.equal((by.get('tmp') as { mode: number }).mode, 0o1777);
  t.same((by.get('etc/linuxkit/modules.net') as { data: Buffer }).data.toString(), 'kernel/virtio.ko\n');
  t.same((by.get('etc/linuxkit/modules.base') as { data: Buffer }).data.toString(), 'kernel/virtio_rng.ko\n');
  t.same((by.get('etc/linuxkit/modules.disk') as { data: Buffer }).data.toString(), '');
  t.same(
    (by.get('etc/linuxkit/modules.vsock') as { data: Buffer }).data.toString(),
    'kernel/vsock.ko\n',
    'hyperkit way in: its list, as plain .ko paths',
  );
  t.equal(by.get('usr/lib/modules/6.1/kernel/vsock.ko')?.type, 'file');
  t.same(
    entries.map((e) => e.path),
    [...entries.map((e) => e.path)].sort(),
    'sorted, so the archive is reproducible',
  );
});

t.test('arm64: a gzipped Image is unpacked, anything else refused', async (t) => {
  const image = Buffer.alloc(64);
  image.write('ARM\x64', 56, 'latin1');
  t.same(arm64Image(gzipSync(image), 'vmlinuz').data, image);
  t.throws(() => arm64Image(Buffer.alloc(64), 'vmlinuz-x'), /vmlinuz-x is not an arm64 Image/);
});
