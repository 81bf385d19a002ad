// What a compiled ES module imports, read from its text: enough for the project's own tsc output
// (static `import ... from`, `export ... from`, bare `import '...'` and `import('...')` of a literal).

const SPECIFIERS =
  /(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"]/gm;

/** Every module specifier in `text`, in order: `./x.js`, `node:fs`, `ssh2`, `@sinclair/typebox/value`. */
export function moduleSpecifiers(text: string): string[] {
  return [...text.matchAll(SPECIFIERS)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/** The package a bare specifier names: `ssh2`, `@sinclair/typebox` (from `@sinclair/typebox/value`). */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}
