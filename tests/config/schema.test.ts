import t from 'tap';
import Fastify from 'fastify';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { defaultConfig } from '../../daemon/config/load.js';
import { DaemonConfigSchema } from '../../daemon/config/schema.js';

const config = defaultConfig({ platform: 'darwin', arch: 'arm64' });

t.test('the effective default config satisfies the schema (compiled)', async (t) => {
  const check = TypeCompiler.Compile(DaemonConfigSchema);
  t.equal(check.Check(config), true);
  t.equal(check.Check({ ...config, extra: 1 }), false, 'unknown keys are rejected');
});

t.test('fastify accepts the schema for bodies and responses', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  app.post(
    '/config',
    { schema: { body: DaemonConfigSchema, response: { 200: DaemonConfigSchema } } },
    async (req) => req.body,
  );
  const ok = await app.inject({ method: 'POST', url: '/config', payload: config });
  t.equal(ok.statusCode, 200);
  t.same(ok.json(), config);
  const bad = await app.inject({ method: 'POST', url: '/config', payload: { ...config, cpus: 0 } });
  t.equal(bad.statusCode, 400);
  t.match(bad.json().message, /cpus/);
});
