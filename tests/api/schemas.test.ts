// The reply schemas fastify serializes with need no validator: a union (anyOf/oneOf) or an
// if/then/else makes fast-json-stringify compile an ajv validator on the first reply that meets
// it, which cost the daemon's first `start` ~60 ms (docs/performance.md). Null is a type list.
import t from 'tap';
import { ROUTES } from '../../daemon/api/routes.js';
import { buildApiServer } from '../../daemon/api/server.js';
import { FakeController, STOPPED_NO_VM } from './fixtures/fake-controller.js';

const CONDITIONAL = ['anyOf', 'oneOf', 'allOf', 'if'] as const;

/** JSON pointers of every conditional keyword in `schema`. */
function conditionals(schema: unknown, at = ''): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const found: string[] = [];
  for (const [key, value] of Object.entries(schema)) {
    if ((CONDITIONAL as readonly string[]).includes(key)) found.push(`${at}/${key}`);
    found.push(...conditionals(value, `${at}/${key}`));
  }
  return found;
}

t.test('no reply schema holds a union or a condition', async (t) => {
  for (const route of ROUTES)
    for (const [code, schema] of Object.entries(route.schema.response ?? {}))
      t.same(conditionals(schema), [], `${route.method} ${route.url} ${code}`);
});

t.test('a nullable field serializes both ways', async (t) => {
  const stoppedApp = buildApiServer(new FakeController(STOPPED_NO_VM));
  const runningApp = buildApiServer(new FakeController());
  t.teardown(() => Promise.all([stoppedApp.close(), runningApp.close()]));
  const stopped = (await stoppedApp.inject({ method: 'GET', url: '/v1/status' })).json();
  t.equal(stopped.vm.pid, null, 'a stopped builder has no VM pid');
  const running = (await runningApp.inject({ method: 'GET', url: '/v1/status' })).json();
  t.equal(running.vm.pid, 1234, 'a running one has');
  const status = ROUTES.find((r) => r.operationId === 'getStatus')!.schema.response[200]!;
  t.same(status.properties.vm.properties.pid.type, ['integer', 'null']);
});
