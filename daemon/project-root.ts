// The folder holding package.json (and guest/), found from a module's own location, so the same
// code works run from TypeScript sources (tests) and from the compiled dist/ (the installed daemon).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
let cached: string | undefined;

/** The nearest folder at or above `from` (by default this module's) that has a package.json. */
export function projectRoot(from: string = HERE): string {
  if (from === HERE && cached !== undefined) return cached;
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      if (from === HERE) cached = dir;
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(
        `no package.json found above ${from}: cannot locate the project's files (guest/, package.json)`,
      );
    }
  }
}
