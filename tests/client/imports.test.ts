// linuxkitctl must start fast: its compiled code loads only node: built-ins and its own files,
// never fastify, pino, TypeBox or ssh2 (types from daemon/ are erased at compile time).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { assertFreshBuild } from './fixtures/harness.js';

assertFreshBuild();
const dist = fileURLToPath(new URL('../../dist/client/', import.meta.url));

t.test('every import of the compiled client is node: or a sibling file', async (t) => {
  const files = readdirSync(dist).filter((f) => f.endsWith('.js'));
  t.ok(files.includes('main.js') && files.includes('api-client.js'));
  for (const file of files) {
    const source = readFileSync(join(dist, file), 'utf8');
    const specifiers = [...source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
    for (const specifier of specifiers) {
      // install/uninstall/doctor (./commands/) are loaded lazily, only when those commands run.
      t.match(specifier, /^(node:|\.\/(commands\/)?[\w-]+\.js$)/, `${file} imports ${specifier}`);
    }
  }
});
