// Writes docs/openapi.json from the API's route table (run after `npx tsc -p tsconfig.json`).
// With --check it writes nothing and exits 1 when the committed document is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { buildOpenApiDocument, renderOpenApiDocument } = await import(`${root}dist/daemon/api/openapi.js`);
const { version } = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
const target = `${root}docs/openapi.json`;
const fresh = renderOpenApiDocument(buildOpenApiDocument({ version }));

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {}
  if (committed !== fresh) {
    console.error(
      'docs/openapi.json is out of date: run `npx tsc -p tsconfig.json && node scripts/openapi.mjs`',
    );
    process.exit(1);
  }
} else {
  writeFileSync(target, fresh);
  console.log(`wrote ${target}`);
}
