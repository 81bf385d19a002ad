// docs/openapi.json is generated from the route table the server registers; it must stay current.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { buildOpenApiDocument, renderOpenApiDocument } from '../../daemon/api/openapi.js';
import { ROUTES } from '../../daemon/api/routes.js';
import { buildApiServer } from '../../daemon/api/server.js';
import { FakeController } from './fixtures/fake-controller.js';

const root = new URL('../../', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

t.test('the committed docs/openapi.json equals a freshly generated one', async (t) => {
  const committed = readFileSync(new URL('docs/openapi.json', root), 'utf8');
  const fresh = renderOpenApiDocument(buildOpenApiDocument({ version }));
  t.equal(committed, fresh, 'regenerate with: npx tsc -p tsconfig.json && node scripts/openapi.mjs');
});

t.test('every route the server registers is documented, and nothing else', async (t) => {
  const app = buildApiServer(new FakeController());
  t.teardown(() => app.close());
  await app.ready();
  const doc = buildOpenApiDocument({ version }) as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
  );
  t.same(documented.sort(), ROUTES.map((r) => `${r.method} ${r.url}`).sort());
  for (const route of ROUTES) {
    t.ok(
      app.hasRoute({ method: route.method, url: route.url }),
      `${route.method} ${route.url} is registered`,
    );
  }
});

t.test('shared schemas are components referenced by $ref', async (t) => {
  const doc = buildOpenApiDocument({ version }) as {
    paths: Record<
      string,
      Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }> }>
    >;
    components: { schemas: Record<string, unknown> };
  };
  t.same(doc.paths['/v1/status']!.get!.responses['200']!.content['application/json']!.schema, {
    $ref: '#/components/schemas/DaemonStatus',
  });
  t.same(doc.paths['/v1/events']!.get!.responses['200']!.content['application/x-ndjson']!.schema, {
    $ref: '#/components/schemas/StateEvent',
  });
  t.match(doc.components.schemas.ActionResponse, {
    properties: { status: { $ref: '#/components/schemas/DaemonStatus' } },
  });
});
