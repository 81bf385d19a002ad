// Acting as another user from a test that runs as root. The checkout may sit under a 0700 home
// (/root on Debian), which the other user cannot enter: so code run as that user comes from a
// copy in a directory anyone may read, and runs without tap's environment (its NODE_OPTIONS load
// tap's module loader from the checkout, which the other user cannot read either).
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot, tempDir } from './env.js';
import { moduleSpecifiers, packageName } from './js-imports.js';

/** Creates the system user if it does not exist (no home, no login shell); returns its uid. */
export function ensureSystemUser(name: string): number {
  if (spawnSync('id', ['-u', name]).status !== 0) {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  }
  return Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
}

/** Runs `argv` as `user` through runuser, from `cwd`, with a minimal environment and no tap in it. */
export function runAsUser(
  user: string,
  argv: string[],
  cwd = '/',
  timeoutMs = 30_000,
): SpawnSyncReturns<string> {
  // `env -i`, not spawn's env option: tap's process tracking adds its loader to NODE_OPTIONS of
  // every child it sees spawned, whatever env the test passes.
  const env = [`PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, 'LANG=C.UTF-8', 'HOME=/'];
  return spawnSync('runuser', ['-u', user, '--', 'env', '-i', ...env, ...argv], {
    encoding: 'utf8',
    timeout: timeoutMs,
    cwd,
  });
}

/** Adds `name` and, through each package.json, every package it depends on (npm's flat layout). */
function addPackage(modules: string, name: string, into: Set<string>): void {
  if (into.has(name)) return;
  const manifest = join(modules, name, 'package.json');
  if (!existsSync(manifest)) return; // an optional dependency that was not installed
  into.add(name);
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as Record<
    string,
    Record<string, string> | undefined
  >;
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
    // A copy nested in the package's own node_modules travels with the package.
    if (!existsSync(join(modules, name, 'node_modules', dep))) addPackage(modules, dep, into);
  }
}

/**
 * Copies a compiled module of the checkout (e.g. dist/client/main.js), every module it imports
 * and the npm packages they need into a new directory anyone may read and enter. Returns the
 * directory and the entry point's path in it.
 */
export async function readableCopy(entryJs: string): Promise<{ dir: string; entry: string }> {
  const dir = await tempDir('readable');
  chmodSync(dir, 0o755);
  const files = new Set<string>();
  const packages = new Set<string>();
  const modules = realpathSync(join(repoRoot, 'node_modules'));
  const walk = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of moduleSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) walk(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) addPackage(modules, packageName(spec), packages);
    }
  };
  walk(resolve(entryJs));
  for (const file of files) {
    const to = join(dir, relative(repoRoot, file));
    mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
    cpSync(file, to);
  }
  for (const name of packages)
    cpSync(join(modules, name), join(dir, 'node_modules', name), { recursive: true, dereference: true });
  // The compiled code is ES modules, as the checkout's package.json says.
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  return { dir, entry: join(dir, relative(repoRoot, resolve(entryJs))) };
}
