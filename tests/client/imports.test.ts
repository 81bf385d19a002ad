// linuxkitctl must start fast: `status` and the other API commands load only node: built-ins and
// the client's own files, never fastify, pino, TypeBox or ssh2 (types from daemon/ are erased at
// compile time). install/uninstall/doctor (dist/client/commands/) reach into daemon/ for their
// engines, so they are loaded lazily, only when those commands run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import { assertFreshBuild, CLI } from './fixtures/harness.js';

assertFreshBuild();
const dist = fileURLToPath(new URL('../../dist/client/', import.meta.url));

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : [],
  );
}

/** The specifiers a compiled file imports: static ones, and the lazy `import()`s apart. */
function importsOf(file: string): { static: string[]; lazy: string[] } {
  const source = readFileSync(file, 'utf8');
  const staticImports = [
    ...source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm),
    ...source.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
  ].map((m) => m[1]);
  const lazy = [...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
  return { static: staticImports, lazy };
}

// Only outputs of current sources: a file moved in client/ leaves its old .js behind in dist/.
const sources = fileURLToPath(new URL('../../client/', import.meta.url));
const files = jsFiles(dist).filter((f) =>
  existsSync(join(sources, relative(dist, f).replace(/\.js$/, '.ts'))),
);
const resolveFrom = (file: string, specifier: string) => resolve(dirname(file), specifier);

/** Every file main.js loads before it runs a command: the closure of its static imports. */
function staticClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const s of importsOf(file).static) if (s.startsWith('.')) visit(resolveFrom(file, s));
  };
  visit(entry);
  return seen;
}

t.test(
  'main.js and everything it imports statically are node: built-ins or files of dist/client/',
  async (t) => {
    const closure = staticClosure(join(dist, 'main.js'));
    t.ok(closure.has(join(dist, 'api-client.js')), 'the closure holds the API client');
    for (const file of closure) {
      const name = relative(dist, file);
      t.notOk(name.startsWith('..'), `${name} is a file of dist/client/`);
      t.notOk(name.startsWith('commands/'), `${name}: the install/doctor commands are not loaded up front`);
      for (const specifier of importsOf(file).static) {
        t.match(specifier, /^(node:|\.\/[\w-]+\.js$)/, `${name} imports ${specifier}`);
      }
    }
  },
);

t.test('every other file under dist/client/ is loaded only lazily, from a file of the client', async (t) => {
  const closure = staticClosure(join(dist, 'main.js'));
  const lazyTargets = new Set(
    files.flatMap((f) =>
      importsOf(f)
        .lazy.filter((s) => s.startsWith('.'))
        .map((s) => resolveFrom(f, s)),
    ),
  );
  const lazyRoots = files.filter((f) => lazyTargets.has(f));
  t.ok(lazyRoots.length > 0, 'install, uninstall and doctor are loaded by import()');
  const reachedLazily = new Set(lazyRoots.flatMap((f) => [...staticClosure(f)]));
  for (const file of files) {
    const name = relative(dist, file);
    t.ok(closure.has(file) || reachedLazily.has(file), `${name} is loaded at start or behind an import()`);
    for (const specifier of importsOf(file).lazy) {
      t.match(
        specifier,
        /^(node:|\.\.?\/)/,
        `${name} lazily imports a built-in or a file of the project (${specifier})`,
      );
    }
  }
});

t.test('`linuxkitctl status` run for real loads only node: built-ins and dist/client/ files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lk-imports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'loaded.txt');
  // A module resolve hook (module.register) records every module the CLI process resolves.
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, result.url + '\\n');
  return result;
}
`,
  );
  writeFileSync(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`,
  );
  writeFileSync(log, '');
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      pathToFileURL(join(dir, 'register.mjs')).href,
      CLI,
      'status',
      '--socket',
      join(dir, 'none.sock'),
    ],
    { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME } },
  );
  t.equal(run.status, 3, `status without a daemon exits 3 (${run.stderr.trim()})`);
  const loaded = readFileSync(log, 'utf8')
    .split('\n')
    .filter((u) => u !== '' && !u.endsWith('/register.mjs'));
  t.ok(
    loaded.some((u) => u.endsWith('/dist/client/main.js')),
    'the hook saw main.js load',
  );
  const clientUrl = pathToFileURL(dist).href;
  for (const url of new Set(loaded)) {
    const ok =
      url.startsWith('node:') || (url.startsWith(clientUrl) && !url.startsWith(`${clientUrl}commands/`));
    t.ok(ok, `status loads ${url}`);
  }
});
