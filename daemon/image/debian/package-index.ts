// The packages of several suites as one index: for each name the newest version any suite has
// (a security update wins over the release it fixes).
import type { IndexedPackage } from './archive.js';
import { compareDebianVersions } from './version.js';

export type PackageIndex = Map<string, IndexedPackage>;

export function mergeSuites(suites: IndexedPackage[][]): PackageIndex {
  const index: PackageIndex = new Map();
  for (const packages of suites) {
    for (const p of packages) {
      const have = index.get(p.name);
      if (!have || compareDebianVersions(p.version, have.version) > 0) index.set(p.name, p);
    }
  }
  return index;
}

export function lookup(index: PackageIndex, name: string, why: string): IndexedPackage {
  const p = index.get(name);
  if (!p) throw new Error(`no package ${name} in the Debian index (${why})`);
  return p;
}

/** The names a package depends on that the index has (the first such alternative of each group). */
export function dependencyNames(index: PackageIndex, p: IndexedPackage): string[] {
  return p.depends
    .map((group) => group.find((n) => index.has(n)))
    .filter((n): n is string => n !== undefined);
}
