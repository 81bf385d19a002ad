// From a merged Debian index to everything the image is made of: the kernel package (through its
// metapackage), the library closure of the guest's programs, busybox, the kernel modules in load
// order. Only `load` touches packages; it fetches (checked) and unpacks one by name.
import type { IndexedPackage } from './archive.js';
import { ARCH_PROFILES, DISK_MODULES, DLOPENED, PROGRAMS, SEEDS, type GuestArch } from './arch-profile.js';
import { busyboxApplets } from './busybox.js';
import { isStaticElf, findClosure, type LoadedPackage } from './closure.js';
import type { DebEntry } from './deb.js';
import { decompress, compressionOfName } from './decompress.js';
import { moduleDepends, parseElf } from './elf.js';
import { icuDataForGuest, isIcuDataLibrary } from './icu-data-stub.js';
import type { GuestFile, InitramfsParts } from './initramfs.js';
import { builtinModules, moduleLoadOrder, moduleName, type KernelModule } from './modules.js';
import { dependencyNames, lookup, type PackageIndex } from './package-index.js';

export interface ResolvedPackage {
  name: string;
  version: string;
  sha256: string;
  filename: string;
  suite: string;
}

export interface Resolution {
  kernelVersion: string;
  /** Every package a file of the image comes from, sorted by name. */
  packages: ResolvedPackage[];
  vmlinuz: Buffer;
  kernelConfig: string;
  /** The image's parts, less guest/init and guest/rootfs. */
  parts: Omit<InitramfsParts, 'rootfs' | 'init'>;
  /** Files outside /usr that packages ship (etc/mke2fs.conf), placed as they are. */
  etcFiles: GuestFile[];
  /** What the builder could not do as it meant to, but the image works without (for its log). */
  notes: string[];
  modules: string[];
}

export type FetchPackage = (p: IndexedPackage) => Promise<DebEntry[]>;

function entry(entries: DebEntry[], path: string, pkg: string): DebEntry & { type: 'file' } {
  const e = entries.find((x) => x.path === path);
  if (e?.type !== 'file') throw new Error(`${pkg} ships no file ${path}`);
  return e;
}

export async function resolveImage(
  arch: GuestArch,
  index: PackageIndex,
  fetchPackage: FetchPackage,
): Promise<Resolution> {
  const profile = ARCH_PROFILES[arch];
  const used = new Map<string, IndexedPackage>();
  const loaded = new Map<string, Promise<LoadedPackage>>();
  const load = (name: string): Promise<LoadedPackage> => {
    let p = loaded.get(name);
    if (!p) {
      const pkg = lookup(index, name, `needed for the ${arch} guest image`);
      p = fetchPackage(pkg).then((entries) => ({
        name,
        version: pkg.version,
        dependencies: dependencyNames(index, pkg),
        entries,
      }));
      loaded.set(name, p);
    }
    return p;
  };

  const meta = lookup(index, profile.kernelMeta, 'the kernel metapackage');
  const kernelPkg = dependencyNames(index, meta).find((n) => n.startsWith('linux-image-'));
  if (!kernelPkg)
    throw new Error(`${profile.kernelMeta} ${meta.version} depends on no linux-image-* package`);
  const kernelVersion = kernelPkg.slice('linux-image-'.length);

  const closure = await findClosure(
    { triplet: profile.triplet, seeds: SEEDS, programs: PROGRAMS, dlopened: DLOPENED },
    load,
  );
  for (const f of closure.files) {
    const machine = parseElf(f.data, f.path).machine;
    if (machine !== profile.elfMachine)
      throw new Error(
        `${f.path} from ${f.pkg} is ELF machine ${machine}, not ${arch}'s ${profile.elfMachine}`,
      );
  }
  const seeds = new Map<string, LoadedPackage>();
  for (const s of SEEDS) seeds.set(s, await load(s));
  const busybox = entry(seeds.get('busybox-static')!.entries, 'bin/busybox', 'busybox-static').data;
  if (!isStaticElf(busybox, 'bin/busybox'))
    throw new Error('bin/busybox of busybox-static loads shared libraries; the guest needs a static one');
  const nixLinks = seeds
    .get('nix-bin')!
    .entries.filter((e) => e.type === 'symlink' && e.target === 'nix' && /^usr\/bin\/[^/]+$/.test(e.path))
    .map((e) => e.path.slice('usr/bin/'.length));
  const mke2fsConf = entry(seeds.get('e2fsprogs')!.entries, 'etc/mke2fs.conf', 'e2fsprogs');

  const kernel = await load(kernelPkg);
  const vmlinuz = entry(kernel.entries, `boot/vmlinuz-${kernelVersion}`, kernelPkg).data;
  const kernelConfig = entry(kernel.entries, `boot/config-${kernelVersion}`, kernelPkg).data.toString('utf8');
  const moduleRoot = `lib/modules/${kernelVersion}/`;
  const files = new Map<string, { path: string; data: Buffer }>();
  for (const e of kernel.entries) {
    if (e.type === 'file' && e.path.startsWith(moduleRoot) && /\.ko(\.(xz|zst|gz))?$/.test(e.path)) {
      files.set(moduleName(e.path), { path: e.path.slice(moduleRoot.length), data: e.data });
    }
  }
  const builtinEntry = kernel.entries.find((e) => e.path === `${moduleRoot}modules.builtin`);
  const builtin = builtinModules(builtinEntry?.type === 'file' ? builtinEntry.data.toString('utf8') : '');
  // Modules are uncompressed (and their .modinfo read) only when visited.
  const plain = new Map<string, Buffer>();
  const uncompressed = async (path: string, data: Buffer): Promise<Buffer> => {
    const known = plain.get(path);
    if (known) return known;
    const out = await decompress(data, compressionOfName(path), `${kernelPkg} ${path}`);
    plain.set(path, out);
    return out;
  };
  const modules = new Map<string, KernelModule>();
  for (const [name, f] of files) {
    const depends = async (): Promise<string[]> =>
      moduleDepends(await uncompressed(f.path, f.data), `${kernelPkg} ${f.path}`);
    modules.set(name, { path: f.path, depends });
  }
  const seen = new Set<string>();
  const netModules = await moduleLoadOrder(profile.netModules, modules, builtin, seen, kernelVersion);
  const baseModules = await moduleLoadOrder(profile.baseModules, modules, builtin, seen, kernelVersion);
  // Each optional list leaves out what the net and base lists load, and is loaded on its own (one, the
  // other or both), so the two must not share a module: insmod refuses one already loaded.
  const afterBase = new Set(seen);
  const diskModules = await moduleLoadOrder(DISK_MODULES, modules, builtin, seen, kernelVersion);
  const vsockModules = await moduleLoadOrder(
    profile.vsockModules,
    modules,
    builtin,
    afterBase,
    kernelVersion,
  );
  const shared = vsockModules.filter((p) => diskModules.includes(p));
  if (shared.length > 0)
    throw new Error(
      `kernel ${kernelVersion}: ${shared.join(', ')} would be loaded by both the disk and the vsock module lists; move them to the base list`,
    );
  const moduleFiles = new Map<string, Buffer>();
  for (const p of [...netModules, ...baseModules, ...diskModules, ...vsockModules]) {
    moduleFiles.set(p, await uncompressed(p, files.get(moduleName(p))!.data));
  }

  const notes: string[] = [];
  const guestFiles = closure.files.map((f) => {
    if (!isIcuDataLibrary(f.path)) return { path: f.path, data: f.data, mode: f.mode };
    const icu = icuDataForGuest(f.data, `${f.pkg} ${f.path}`);
    if (icu.kept) notes.push(icu.kept);
    return { path: f.path, data: icu.data, mode: f.mode };
  });

  for (const name of [...closure.packages, kernelPkg]) used.set(name, lookup(index, name, 'resolved'));
  const packages = [...used.values()]
    .map((p) => ({
      name: p.name,
      version: p.version,
      sha256: p.sha256,
      filename: p.filename,
      suite: p.suite,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    kernelVersion,
    packages,
    vmlinuz,
    kernelConfig,
    parts: {
      files: guestFiles,
      nixLinks,
      busybox,
      applets: busyboxApplets(busybox),
      kernelVersion,
      modules: moduleFiles,
      netModules,
      baseModules,
      diskModules,
      vsockModules,
    },
    etcFiles: [{ path: 'etc/mke2fs.conf', data: mke2fsConf.data, mode: 0o644 }],
    notes,
    modules: [...netModules, ...baseModules, ...diskModules, ...vsockModules],
  };
}
