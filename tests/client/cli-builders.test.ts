// linuxkitctl with several builders: --builder NAME reaches that builder's daemon at
// <state dir>/builders/NAME/daemon.sock, and status --all asks every builder it finds there,
// with the exit code of the least healthy one. Real API servers (a FakeController behind each)
// on the sockets the naming convention puts them at.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildApiServer, listenOnUnixSocket } from '../../daemon/api/server.js';
import type { DaemonStatus } from '../../daemon/controller.js';
import { FakeController } from '../api/fixtures/fake-controller.js';
import { assertFreshBuild, runCli } from './fixtures/harness.js';

assertFreshBuild();

interface Teardown {
  teardown: (fn: () => unknown) => void;
}

/** A state folder with builders: `null` is the default one; a status makes its daemon answer. */
async function builders(
  t: Teardown,
  entries: Array<[string | null, Partial<DaemonStatus> | 'config-only']>,
): Promise<string> {
  const base = mkdtempSync(join(tmpdir(), 'lk-cb-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  for (const [name, status] of entries) {
    const dir = name === null ? base : join(base, 'builders', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{}');
    if (status === 'config-only') continue;
    const fake = new FakeController(status);
    const app = buildApiServer(fake);
    t.teardown(async () => {
      fake.dispose();
      await app.close();
    });
    await listenOnUnixSocket(app, join(dir, 'daemon.sock'));
  }
  return base;
}

t.test("--builder NAME talks to that builder's daemon, before or after the command", async (t) => {
  const base = await builders(t, [
    [
      null,
      {
        arch: 'x86_64',
        vm: { pid: 1111, startedAt: null, adopted: false, readyAt: null, bootToReadyMs: null },
      },
    ],
    [
      'arm',
      {
        arch: 'aarch64',
        vm: { pid: 2222, startedAt: null, adopted: false, readyAt: null, bootToReadyMs: null },
      },
    ],
  ]);
  const env = { LINUXKIT_NIX_STATE_DIR: base };
  const before = await runCli(['--builder', 'arm', 'status'], env);
  t.equal(before.code, 0, before.stderr);
  t.match(before.stdout, /^builder: running \(healthy\) {2}backend qemu\/tcg {2}guest aarch64 {2}pid 2222/);
  const after = await runCli(['status', '--builder=arm', '--json'], env);
  t.equal((JSON.parse(after.stdout) as DaemonStatus).vm.pid, 2222);
  const plain = await runCli(['status', '--json'], env);
  t.equal((JSON.parse(plain.stdout) as DaemonStatus).vm.pid, 1111, 'without --builder: the default builder');
  const health = await runCli(['health', '--builder', 'arm'], env);
  t.equal(health.code, 0);
});

t.test(
  '--builder: a missing builder is unreachable at its own socket; bad names and --socket with it are usage errors',
  async (t) => {
    const base = await builders(t, [[null, {}]]);
    const env = { LINUXKIT_NIX_STATE_DIR: base };
    const missing = await runCli(['--builder', 'riscv', 'status'], env);
    t.equal(missing.code, 3);
    t.match(
      missing.stderr,
      `linuxkitd is not reachable at ${join(base, 'builders', 'riscv', 'daemon.sock')}: no socket there`,
    );
    const bad = await runCli(['--builder', 'Arm/1', 'status'], env);
    t.equal(bad.code, 1);
    t.match(bad.stderr, /--builder: a builder name is 1 to 16 characters of a-z, 0-9 and '-'/);
    const both = await runCli(['--builder', 'arm', '--socket', '/tmp/x.sock', 'status'], env);
    t.equal(both.code, 1);
    t.match(both.stderr, /--socket and --builder exclude each other/);
  },
);

t.test(
  'status --all lists every builder, default first, and exits 0 only when all are healthy',
  async (t) => {
    const base = await builders(t, [
      [null, { arch: 'x86_64' }],
      ['arm', { arch: 'aarch64' }],
    ]);
    const env = { LINUXKIT_NIX_STATE_DIR: base };
    const all = await runCli(['status', '--all'], env);
    t.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trimEnd().split('\n');
    t.equal(lines[0], `[default] ${join(base, 'daemon.sock')}`);
    t.match(lines[1], /^builder: running \(healthy\) {2}backend qemu\/tcg {2}guest x86_64 /);
    t.equal(lines[2], `[arm] ${join(base, 'builders', 'arm', 'daemon.sock')}`);
    t.match(lines[3], /^builder: running \(healthy\) {2}backend qemu\/tcg {2}guest aarch64 /);
    t.equal(lines.length, 4);
    const json = JSON.parse((await runCli(['status', '--all', '--json'], env)).stdout) as {
      builders: Array<{
        builder: string | null;
        socketPath: string;
        status: DaemonStatus | null;
        error: string | null;
      }>;
    };
    t.same(
      json.builders.map((b) => [b.builder, b.status?.arch, b.error]),
      [
        [null, 'x86_64', null],
        ['arm', 'aarch64', null],
      ],
    );
  },
);

t.test(
  'status --all: an unhealthy or silent builder makes it exit 4 and says why; none found exits 3',
  async (t) => {
    const base = await builders(t, [
      [null, {}],
      ['arm', { state: 'starting', healthy: false, arch: 'aarch64' }],
      ['old', 'config-only'],
    ]);
    const env = { LINUXKIT_NIX_STATE_DIR: base };
    const all = await runCli(['status', '--all'], env);
    t.equal(all.code, 4);
    t.match(all.stdout, /\[arm\] \S+\nbuilder: starting \(not healthy\)/);
    t.match(
      all.stdout,
      `[old] ${join(base, 'builders', 'old', 'daemon.sock')}\nbuilder: not reachable: no socket there`,
    );
    const usage = await runCli(['status', '--all', '--builder', 'arm'], env);
    t.equal(usage.code, 1);
    t.match(usage.stderr, /status --all lists every builder: it takes neither --socket nor --builder/);

    const empty = mkdtempSync(join(tmpdir(), 'lk-cb-'));
    t.teardown(() => rmSync(empty, { recursive: true, force: true }));
    const none = await runCli(['status', '--all'], { LINUXKIT_NIX_STATE_DIR: empty });
    t.equal(none.code, 3);
    t.match(none.stderr, `linuxkitctl: no builders found in ${empty} (linuxkitctl install sets one up)`);
  },
);
