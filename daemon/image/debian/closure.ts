// Which packages and files the guest's programs need: starting from the seed packages, follows
// every program's DT_NEEDED (and the loader's, and the NSS modules Nix dlopens) through the
// packages' files the way the dynamic loader would find them once all are unpacked in one root.
// A soname no needed package ships comes from one of the requesting package's Depends (Debian's
// shlibs rule), tried in a fixed order so the same index always gives the same closure.
import { posix } from 'node:path';
import type { DebEntry } from './deb.js';
import { isElf, parseElf } from './elf.js';

export interface LoadedPackage {
  name: string;
  version: string;
  /** Dependencies (names the index has), for finding a soname's provider. */
  dependencies: string[];
  entries: DebEntry[];
}

export type LoadPackage = (name: string) => Promise<LoadedPackage>;

export interface ClosureSpec {
  /** e.g. x86_64-linux-gnu: the multiarch folder Debian's loader searches first. */
  triplet: string;
  seeds: string[];
  /** Dynamically linked programs, root-relative as the packages ship them. */
  programs: string[];
  /** Libraries loaded with dlopen, which DT_NEEDED never names. */
  dlopened: string[];
}

export interface ClosureFile {
  /** Root-relative path the guest finds it by (a soname's path, a program's path). */
  path: string;
  data: Buffer;
  mode: number;
  pkg: string;
}

export interface Closure {
  /** Packages that contribute files, sorted. */
  packages: string[];
  /** Programs, libraries (by the path the loader looks them up at) and the loader itself. */
  files: ClosureFile[];
  interpreter: string;
  /** The files of the needed packages by root-relative path, symlinks unresolved. */
  root: Map<string, { entry: DebEntry; pkg: string }>;
}

/** Debian's library package name for a soname: libfoo.so.1 → libfoo1, libfoo2.so.3 → libfoo2-3. */
export function guessLibraryPackage(soname: string): string {
  const base = soname.split('.so')[0].replace(/_/g, '-').toLowerCase();
  const ver = soname.slice(soname.indexOf('.so') + 3).replace(/^\./, '');
  return /\d$/.test(base) ? `${base}-${ver}` : `${base}${ver}`;
}

export async function findClosure(spec: ClosureSpec, load: LoadPackage): Promise<Closure> {
  const libDirs = [`lib/${spec.triplet}`, `usr/lib/${spec.triplet}`, 'lib', 'usr/lib'];
  const root = new Map<string, { entry: DebEntry; pkg: string }>();
  const needed = new Map<string, LoadedPackage>();
  const need = async (name: string): Promise<LoadedPackage> => {
    const have = needed.get(name);
    if (have) return have;
    const p = await load(name);
    needed.set(name, p);
    for (const entry of p.entries) if (!root.has(entry.path)) root.set(entry.path, { entry, pkg: name });
    return p;
  };
  for (const s of spec.seeds) await need(s);

  /** Follows symlinks and hard links to the regular file a path names. */
  const resolve = (
    path: string,
  ): { path: string; entry: DebEntry & { type: 'file' }; pkg: string } | null => {
    for (let hops = 0; hops < 20; hops++) {
      const hit = root.get(path);
      if (!hit) return null;
      const e = hit.entry;
      if (e.type === 'file') return { path, entry: e, pkg: hit.pkg };
      if (e.type === 'symlink')
        path = e.target.startsWith('/')
          ? posix.normalize(e.target).slice(1)
          : posix.join(posix.dirname(path), e.target);
      else if (e.type === 'hardlink') path = e.target;
      else return null;
    }
    return null;
  };
  const findSoname = (so: string, extraDirs: string[]): string | null => {
    for (const d of [...extraDirs, ...libDirs]) if (resolve(`${d}/${so}`)) return `${d}/${so}`;
    return null;
  };
  const ships = (p: LoadedPackage, so: string): boolean => {
    const paths = new Set(libDirs.map((d) => `${d}/${so}`));
    return p.entries.some((e) => paths.has(e.path));
  };
  const provide = async (so: string, requester: string): Promise<void> => {
    const deps = needed.get(requester)?.dependencies ?? [];
    const guess = guessLibraryPackage(so);
    const order = [
      ...deps.filter((d) => d === guess),
      ...deps.filter((d) => d !== guess && d.startsWith('lib')),
      ...deps.filter((d) => !d.startsWith('lib')),
    ];
    for (const candidate of order) {
      if (needed.has(candidate)) continue;
      const p = await load(candidate);
      if (ships(p, so)) {
        await need(candidate);
        return;
      }
    }
    throw new Error(
      `no package provides ${so} (needed by a file of ${requester}; its Depends: ${deps.join(', ') || 'none'})`,
    );
  };

  const files = new Map<string, ClosureFile>();
  const scanned = new Set<string>();
  let interpreter: string | null = null;
  const scan = async (path: string): Promise<void> => {
    const real = resolve(path);
    if (!real) throw new Error(`${path} is shipped by none of the packages ${[...needed.keys()].join(', ')}`);
    if (!files.has(path))
      files.set(path, { path, data: real.entry.data, mode: real.entry.mode, pkg: real.pkg });
    if (scanned.has(real.path)) return;
    scanned.add(real.path);
    const elf = parseElf(real.entry.data, `${real.path} (from ${real.pkg})`);
    if (elf.interpreter) interpreter ??= elf.interpreter.replace(/^\/+/, '');
    const origin = posix.dirname(real.path);
    const extra = elf.runpath.map((d) =>
      posix.normalize(d.replace(/\$\{?ORIGIN\}?/g, `/${origin}`)).replace(/^\/+/, ''),
    );
    for (const so of elf.needed) {
      let at = findSoname(so, extra);
      if (!at) {
        await provide(so, real.pkg);
        at = findSoname(so, extra);
        if (!at) throw new Error(`${so} is still not found after adding its package`);
      }
      await scan(at);
    }
  };
  for (const prog of spec.programs) await scan(prog);
  for (const so of spec.dlopened) {
    const at = findSoname(so, []);
    if (!at)
      throw new Error(
        `${so} (loaded with dlopen) is in none of the packages ${[...needed.keys()].join(', ')}`,
      );
    await scan(at);
  }
  if (!interpreter) throw new Error(`none of ${spec.programs.join(', ')} names a program interpreter`);
  await scan(interpreter);
  return { packages: [...needed.keys()].sort(), files: [...files.values()], interpreter, root };
}

/** True when `data` is an ELF file that loads no shared library (busybox-static). */
export function isStaticElf(data: Buffer, label: string): boolean {
  return isElf(data) && parseElf(data, label).needed.length === 0;
}
