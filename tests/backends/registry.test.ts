// A new backend is one descriptor file plus one registry entry: with the fake backend added to
// the registry list (and nothing else changed), config validation, the API schema, backend
// choice, doctor, the daemon's flags and the CLI all offer it. The entry is added before any
// of those modules loads (each test file runs in its own process), as if it were in the list.
import { mkdtemp, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BackendDescriptor } from '../../daemon/backends/descriptor.js';
import { BACKENDS } from '../../daemon/backends/registry.js';
import type { HostFacts } from '../../daemon/host/host-facts.js';
import { fakeDescriptor } from './fixtures/fake-backend/descriptor.js';

// The one registry entry. Everything else is imported only after it, below.
(BACKENDS as BackendDescriptor[]).push(fakeDescriptor);
const load = <T>(module: string): Promise<T> => import(module) as Promise<T>;

const linux = (tools: string[]): HostFacts => ({
  platform: 'linux',
  machineArch: 'x64',
  processArch: 'x64',
  rosetta: false,
  hvSupport: null,
  kvmUsable: true,
  tools: Object.fromEntries(
    ['qemu-system-x86_64', 'qemu-system-aarch64', 'fake-hypervisor'].map((b) => [
      b,
      tools.includes(b) ? `/usr/bin/${b}` : null,
    ]),
  ),
});

t.test('config validation offers it and applies its descriptor', async (t) => {
  const { resolveConfig } = await load<typeof import('../../daemon/config/load.js')>(
    '../../daemon/config/load.js',
  );
  const host = { platform: 'linux' as const, arch: 'x64' };
  t.match(resolveConfig({ backend: 'fake', arch: 'aarch64' }, host), {
    ok: true,
    config: { backend: 'fake', arch: 'aarch64' },
  });
  t.match(resolveConfig({ backend: 'nope' }, host), {
    ok: false,
    errors: [{ key: 'backend', message: "backend must be one of auto, qemu, hyperkit, fake; got 'nope'" }],
  });
  t.match(resolveConfig({ backend: 'fake', arch: 'x86_64' }, host), {
    ok: false,
    errors: [
      {
        key: 'arch',
        message: "arch must be aarch64 with backend fake (it runs only aarch64 guests); got 'x86_64'",
      },
    ],
  });
  t.match(resolveConfig({ backend: 'fake', arch: 'aarch64', accel: 'kvm' }, host), {
    ok: false,
    errors: [{ key: 'accel', message: "accel must be auto or tcg with backend fake; got 'kvm'" }],
  });
});

t.test('the API schema and the OpenAPI document list it', async (t) => {
  const { DaemonStatusSchema } = await load<typeof import('../../daemon/api/schemas.js')>(
    '../../daemon/api/schemas.js',
  );
  t.same((DaemonStatusSchema.properties.backend as unknown as { enum: string[] }).enum, [
    'qemu',
    'hyperkit',
    'fake',
  ]);
  const { buildOpenApiDocument } = await load<typeof import('../../daemon/api/openapi.js')>(
    '../../daemon/api/openapi.js',
  );
  t.match(JSON.stringify(buildOpenApiDocument({ version: 'test' })), /"enum":\["qemu","hyperkit","fake"\]/);
});

t.test('automatic choice takes it where it fits, and the daemon can create it', async (t) => {
  const { chooseBackend } = await load<typeof import('../../daemon/backends/choose-backend.js')>(
    '../../daemon/backends/choose-backend.js',
  );
  const all = linux(['qemu-system-x86_64', 'qemu-system-aarch64', 'fake-hypervisor']);
  t.match(chooseBackend({ backend: 'auto', accel: 'auto', arch: 'aarch64' }, all), {
    backend: 'fake',
    accel: 'tcg',
    reason: /^auto on this linux\/x64 host: fake \(the test prefers it\); accel tcg, emulated/,
  });
  t.match(
    chooseBackend({ backend: 'auto', accel: 'auto', arch: 'x86_64' }, all),
    { backend: 'qemu', accel: 'kvm' },
    'not for a guest it cannot boot',
  );
  t.match(
    chooseBackend({ backend: 'auto', accel: 'auto', arch: 'aarch64' }, linux(['qemu-system-aarch64'])),
    { backend: 'qemu', reason: /passed over fake: fake-hypervisor not on PATH/ },
    'not without its tool',
  );
  const { findBackend } = await load<typeof import('../../daemon/backends/backend-list.js')>(
    '../../daemon/backends/backend-list.js',
  );
  const backend = await findBackend('fake')!.create({ log: () => {} });
  t.equal(backend.name, 'fake');
});

t.test('doctor judges it like any backend', async (t) => {
  const { backendFacts } = await load<typeof import('../../client/install/doctor-facts.js')>(
    '../../client/install/doctor-facts.js',
  );
  const wanted = { backend: 'fake', accel: 'auto', arch: 'aarch64' } as const;
  t.match(backendFacts(wanted, linux(['fake-hypervisor'])), {
    ok: true,
    backend: 'fake',
    accel: 'tcg',
    missingTools: [],
  });
  t.match(backendFacts(wanted, linux([])), {
    ok: true,
    backend: 'fake',
    missingTools: ['fake-hypervisor'],
    installHint: 'install fake-hypervisor',
  });
  t.match(backendFacts(wanted, { ...linux(['fake-hypervisor']), platform: 'darwin', machineArch: 'x64' }), {
    ok: false,
    message: 'backend fake runs only on Linux or Apple Silicon Macs; this is an Intel Mac',
  });
});

t.test("the daemon's flags and the CLI offer it", async (t) => {
  const { parseDaemonArgs, DAEMON_USAGE } = await load<typeof import('../../daemon/config/flags.js')>(
    '../../daemon/config/flags.js',
  );
  t.match(DAEMON_USAGE, '--backend NAME     auto, qemu, hyperkit or fake');
  t.match(parseDaemonArgs(['--backend', 'fake', '--arch', 'aarch64']), {
    ok: true,
    args: { overrides: { backend: 'fake', arch: 'aarch64' } },
  });

  const { INSTALL_USAGE } = await load<typeof import('../../client/commands/install.js')>(
    '../../client/commands/install.js',
  );
  t.match(INSTALL_USAGE, /--backend NAME {3}auto, qemu, hyperkit or fake --accel NAME/);

  // install puts the folder of the fake backend's tool on the daemon's PATH.
  const dir = await mkdtemp(join(tmpdir(), 'fake-tool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'bin'));
  await writeFile(join(dir, 'bin', 'fake-hypervisor'), '#!/bin/sh\n');
  await chmod(join(dir, 'bin', 'fake-hypervisor'), 0o755);
  const { hypervisorToolDirs } = await load<typeof import('../../client/commands/cli-context.js')>(
    '../../client/commands/cli-context.js',
  );
  t.same(hypervisorToolDirs(`${join(dir, 'bin')}:${dir}`), [join(dir, 'bin')]);
});
