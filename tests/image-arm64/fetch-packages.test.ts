// guest/arm64/fetch-packages.sh for real: Debian's arm64 packages downloaded (once, into the
// folder of the shared image cache where ensureGuestImage keeps them, so the aarch64 image tests
// reuse this download; kept between runs) and unpacked without installing them. The closure
// is checked here with a reader of ELF files of its own (not readelf, which the script uses):
// every DT_NEEDED of every program the guest runs, and of the libraries Nix dlopens, is found
// among the unpacked files, and everything is arm64 (e_machine 183).
import t from 'tap';
import { execFile } from 'node:child_process';
import { lstat, open, readFile, readlink, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ARM64_PACKAGES_DIR } from '../../daemon/image/guest-image.js';
import { imageCacheDir, repoRoot, requireTool } from '../helpers/env.js';

for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'readelf', 'depmod', 'flock']) requireTool(tool);

const script = join(repoRoot, 'guest/arm64/fetch-packages.sh');
const outDir = join(imageCacheDir, ARM64_PACKAGES_DIR);
const root = join(outDir, 'root');
const EM_AARCH64 = 183;
const LIB_DIRS = ['lib/aarch64-linux-gnu', 'usr/lib/aarch64-linux-gnu', 'lib', 'usr/lib'];

function fetchPackages(): Promise<{ stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile('bash', [script, outDir], { encoding: 'utf8', timeout: 480_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`fetch-packages.sh failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr, ms: performance.now() - started });
    });
  });
}

const first = await fetchPackages();
t.comment(`first run: ${Math.round(first.ms)} ms`);

interface Elf {
  machine: number;
  type: number;
  interp: string | null;
  needed: string[];
  runpath: string[];
}

/** Reads the parts of an ELF64 little-endian file the loader cares about. */
async function readElf(file: string): Promise<Elf> {
  const b = await readFile(file);
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian ELF file`);
  const type = b.readUInt16LE(16);
  const machine = b.readUInt16LE(18);
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
  let dynamic: { offset: number; size: number } | null = null;
  let interp: string | null = null;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const ptype = b.readUInt32LE(p);
    const offset = Number(b.readBigUInt64LE(p + 8));
    const vaddr = Number(b.readBigUInt64LE(p + 16));
    const filesz = Number(b.readBigUInt64LE(p + 32));
    if (ptype === 1) loads.push({ vaddr, offset, filesz });
    if (ptype === 2) dynamic = { offset, size: filesz };
    if (ptype === 3) interp = b.toString('latin1', offset, offset + filesz).replace(/\0+$/, '');
  }
  const needed: string[] = [];
  const runpath: string[] = [];
  if (dynamic) {
    const entries: Array<[number, number]> = [];
    let strtab = -1;
    for (let o = dynamic.offset; o + 16 <= dynamic.offset + dynamic.size; o += 16) {
      const tag = Number(b.readBigInt64LE(o));
      const val = Number(b.readBigUInt64LE(o + 8));
      if (tag === 0) break;
      if (tag === 5) strtab = val;
      entries.push([tag, val]);
    }
    const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
    if (!seg) throw new Error(`${file}: DT_STRTAB is outside every PT_LOAD segment`);
    const strOff = strtab - seg.vaddr + seg.offset;
    const str = (at: number) => b.toString('latin1', strOff + at, b.indexOf(0, strOff + at));
    for (const [tag, val] of entries) {
      if (tag === 1) needed.push(str(val)); // DT_NEEDED
      if (tag === 15 || tag === 29) runpath.push(...str(val).split(':')); // DT_RPATH, DT_RUNPATH
    }
  }
  return { machine, type, interp, needed, runpath };
}

/** Follows symlinks inside `root` (absolute targets mean root-relative), as the guest will. */
async function resolveInRoot(rel: string): Promise<string | null> {
  let path = posix.normalize(rel).replace(/^\/+/, '');
  for (let hops = 0; hops < 20; hops++) {
    const st = await lstat(join(root, path)).catch(() => null);
    if (!st) return null;
    if (!st.isSymbolicLink()) return path;
    const target = await readlink(join(root, path));
    path = target.startsWith('/') ? posix.normalize(target).slice(1) : posix.normalize(posix.join(posix.dirname(path), target));
  }
  return null;
}

async function readLines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
}

t.test('packages.txt: the sorted "name version" manifest, also printed', async (t) => {
  const lines = await readLines(join(outDir, 'packages.txt'));
  t.equal(first.stdout, `${lines.join('\n')}\n`, 'stdout is packages.txt');
  t.same(lines, [...lines].sort(), 'sorted');
  for (const line of lines) t.match(line, /^[a-z0-9][a-z0-9.+-]+ [0-9][A-Za-z0-9.+~:-]*$/, line);
  const names = lines.map((l) => l.split(' ')[0]);
  t.equal(new Set(names).size, names.length, 'each package once');
  for (const want of ['busybox-static', 'dropbear-bin', 'nix-bin', 'e2fsprogs', 'libc6']) t.ok(names.includes(want), want);
  t.ok(names.some((n) => /^linux-image-.*-cloud-arm64$/.test(n)), 'the versioned cloud kernel package');
  t.notOk(names.includes('linux-image-cloud-arm64'), 'not the meta package');
  // Only what the closure needs: nix-bin's non-library Depends are not pulled in.
  for (const unwanted of ['perl', 'curl', 'bzip2', 'xz-utils', 'libwww-curl-perl']) t.notOk(names.includes(unwanted), `no ${unwanted}`);
  t.comment(`${lines.length} packages`);
});

t.test('the closure: every DT_NEEDED found among the unpacked files, all arm64', async (t) => {
  const files = (await readLines(join(outDir, 'files.txt'))).map((l) => l.split(' ') as [string, string]);
  const programs = files.filter(([k]) => k === 'program').map(([, p]) => p);
  const listedLibs = new Set(files.filter(([k]) => k === 'lib').map(([, p]) => p));
  t.same(
    [...programs].sort(),
    ['bin/busybox', 'sbin/mke2fs', 'usr/bin/dropbearconvert', 'usr/bin/nix', 'usr/sbin/dropbear'],
    'the programs the guest runs',
  );

  // Nix loads the NSS modules with dlopen: they start the walk like the programs do.
  const start = [...programs];
  for (const so of ['libnss_dns.so.2', 'libnss_files.so.2']) {
    const dir = LIB_DIRS.find((d) => listedLibs.has(`${d}/${so}`));
    t.ok(dir, `${so} is listed`);
    if (dir) start.push(`${dir}/${so}`);
  }
  const found = new Map<string, string>(); // soname → path as the loader finds it
  const seen = new Set<string>();
  const missing: string[] = [];
  const notArm64: string[] = [];
  const queue = [...start];
  const interps = new Set<string>();
  while (queue.length > 0) {
    const path = queue.shift()!;
    const real = await resolveInRoot(path);
    if (!real) {
      missing.push(path);
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    const elf = await readElf(join(root, real));
    if (elf.machine !== EM_AARCH64) notArm64.push(`${real} (e_machine ${elf.machine})`);
    if (elf.interp) interps.add(elf.interp);
    const dirs = [
      ...elf.runpath.map((d) => posix.normalize(d.replace(/\$\{?ORIGIN\}?/g, `/${posix.dirname(real)}`)).replace(/^\/+/, '')),
      ...LIB_DIRS,
    ];
    for (const so of elf.needed) {
      let at = found.get(so);
      if (!at) {
        for (const d of dirs) {
          if (await resolveInRoot(`${d}/${so}`)) {
            at = `${d}/${so}`;
            break;
          }
        }
        if (!at) {
          missing.push(`${so} (needed by ${real})`);
          continue;
        }
        found.set(so, at);
      }
      queue.push(at);
    }
  }
  t.same(missing, [], 'no DT_NEEDED soname is missing');
  t.same(notArm64, [], 'every program and library is an arm64 ELF file');
  t.same([...interps], ['/lib/ld-linux-aarch64.so.1'], 'one dynamic loader');
  t.ok(await resolveInRoot('lib/ld-linux-aarch64.so.1'), 'the dynamic loader is unpacked');
  t.ok(files.some(([k, p]) => k === 'interp' && p === 'lib/ld-linux-aarch64.so.1'), 'files.txt names the loader');
  const walked = new Set([...found.values(), ...start.filter((p) => p.includes('.so'))]);
  t.same([...listedLibs].sort(), [...walked].sort(), 'files.txt lists exactly the libraries this walk needs');
  t.ok(seen.size > 60, `the closure has ${seen.size} files`);
});

t.test('busybox, dropbear, nix-store and mke2fs are arm64 programs; busybox is static', async (t) => {
  const programs = ['bin/busybox', 'usr/sbin/dropbear', 'usr/bin/dropbearconvert', 'usr/bin/nix-store', 'usr/bin/nix-daemon', 'sbin/mke2fs'];
  for (const p of programs) {
    const real = await resolveInRoot(p);
    t.ok(real, `${p} exists`);
    if (!real) continue;
    const elf = await readElf(join(root, real));
    t.equal(elf.machine, EM_AARCH64, `${p} is aarch64`);
    t.ok(elf.type === 2 || elf.type === 3, `${p} is an executable (ET_EXEC or ET_DYN)`);
  }
  const bb = await readElf(join(root, 'bin/busybox'));
  t.equal(bb.interp, null, 'busybox has no dynamic loader');
  t.same(bb.needed, [], 'busybox loads no library');
  t.equal(await resolveInRoot('usr/bin/nix-store'), 'usr/bin/nix', 'nix-store is nix under another name');
  t.ok((await stat(join(root, 'etc/mke2fs.conf'))).isFile(), 'mke2fs.conf comes with e2fsprogs');
});

t.test('the kernel: an arm64 Image with its modules and a modules.dep', async (t) => {
  const files = (await readLines(join(outDir, 'files.txt'))).map((l) => l.split(' '));
  const kernel = files.find(([k]) => k === 'kernel')?.[1];
  const kver = files.find(([k]) => k === 'kernel-version')?.[1];
  t.match(kver, /^\d+\.\d+\.\d+-\d+-cloud-arm64$/);
  t.equal(kernel, `boot/vmlinuz-${kver}`);
  // Debian's arm64 vmlinuz is the uncompressed Image: "ARM\x64" at byte 56 of its header.
  const fd = await open(join(root, kernel!), 'r');
  const { buffer } = await fd.read(Buffer.alloc(64), 0, 64, 0);
  await fd.close();
  t.equal(buffer.readUInt32LE(56), 0x644d5241, 'arm64 Image magic');
  t.ok((await stat(join(root, kernel!))).size > 8 << 20, 'a whole kernel, not a stub');

  const moddir = join(root, 'lib/modules', kver!);
  const dep = await readFile(join(moddir, 'modules.dep'), 'utf8');
  for (const mod of ['virtio_pci', 'virtio_net', 'virtio-rng', 'qemu_fw_cfg', 'evdev', 'virtio_blk']) {
    const line = dep.split('\n').find((l) => new RegExp(`(^|/)${mod}\\.ko:`).test(l));
    t.ok(line, `${mod} is a module`);
    if (!line) continue;
    const [path, deps] = line.split(':');
    for (const p of [path, ...deps.trim().split(/\s+/).filter(Boolean)]) {
      const elf = await readElf(join(moddir, p));
      t.equal(elf.machine, EM_AARCH64, `${p} is an arm64 module`);
      t.equal(elf.type, 1, `${p} is relocatable (ET_REL)`);
    }
  }
  const config = await readFile(join(root, `boot/config-${kver}`), 'utf8');
  // What the arm64 guest relies on being built in (docs/aarch64.md).
  for (const opt of ['CONFIG_SERIAL_AMBA_PL011_CONSOLE', 'CONFIG_PCI_HOST_GENERIC', 'CONFIG_GPIO_PL061', 'CONFIG_GPIO_CDEV', 'CONFIG_EXT4_FS', 'CONFIG_CRYPTO_CRC32C']) {
    t.match(config, new RegExp(`^${opt}=y$`, 'm'), `${opt}=y`);
  }
});

t.test('a second run downloads and unpacks nothing and prints the same manifest', async (t) => {
  const before = await stat(join(root, '.fetch-packages.debs'));
  const again = await fetchPackages();
  t.comment(`second run: ${Math.round(again.ms)} ms`);
  t.equal(again.stdout, first.stdout, 'same manifest');
  t.notMatch(again.stderr, /downloading/, 'nothing downloaded');
  t.notMatch(again.stderr, /unpacking/, 'root/ kept as it was');
  const after = await stat(join(root, '.fetch-packages.debs'));
  t.equal(after.mtimeMs, before.mtimeMs, 'root/ not rebuilt');
});
