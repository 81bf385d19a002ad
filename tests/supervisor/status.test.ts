import t from 'tap';
import { freshStepMemory } from '../../daemon/reconciler/types.js';
import { NO_PROBE, nextProbeView, renderStatus, type StatusView } from '../../daemon/supervisor/status.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const ok = { check: 'nix' as const, ok: true, latencyMs: 10, nixVersion: '2.24.9', error: null };
const bad = {
  check: 'nix' as const,
  ok: false,
  latencyMs: null,
  nixVersion: null,
  error: 'connection refused',
};
const sshOk = { check: 'ssh' as const, ok: true, latencyMs: 3, nixVersion: null, error: null };

t.test('the probe view', async (t) => {
  const rows: Array<
    [string, Parameters<typeof nextProbeView>[0], Parameters<typeof nextProbeView>[1], object]
  > = [
    [
      'a first success is the last success',
      NO_PROBE,
      ok,
      { ok: true, at: T0, lastOkAt: T0, firstFailureAt: null, lastNixOkAt: T0, readyAt: T0, latencyMs: 10 },
    ],
    [
      'a later Nix success keeps the time the VM became ready and reports its own latency',
      { ...NO_PROBE, ok: true, at: T0 - 5000, lastOkAt: T0 - 5000, readyAt: T0 - 60_000, latencyMs: 900 },
      ok,
      { readyAt: T0 - 60_000, lastNixOkAt: T0, latencyMs: 10 },
    ],
    [
      'an SSH check keeps the Nix probe latency, version and time; it has its own latency',
      { ...NO_PROBE, ok: true, at: T0 - 5000, lastNixOkAt: T0 - 5000, latencyMs: 700, nixVersion: '2.8.0' },
      sshOk,
      {
        check: 'ssh',
        lastOkAt: T0,
        lastNixOkAt: T0 - 5000,
        latencyMs: 700,
        sshLatencyMs: 3,
        nixVersion: '2.8.0',
      },
    ],
    ['an SSH check never makes a VM ready', NO_PROBE, sshOk, { ok: true, readyAt: null, lastNixOkAt: null }],
    [
      'a first failure starts the failing run',
      NO_PROBE,
      bad,
      { ok: false, at: T0, firstFailureAt: T0, lastOkAt: null },
    ],
    [
      'a failure after a success starts the failing run and keeps the last success',
      { ...NO_PROBE, ok: true, at: T0 - 5000, lastOkAt: T0 - 5000 },
      bad,
      { firstFailureAt: T0, lastOkAt: T0 - 5000 },
    ],
    [
      'another failure keeps the start of the failing run',
      { ...NO_PROBE, ok: false, at: T0 - 1000, firstFailureAt: T0 - 9000, lastOkAt: T0 - 10_000 },
      bad,
      { firstFailureAt: T0 - 9000, lastOkAt: T0 - 10_000, error: 'connection refused' },
    ],
    [
      'a success ends the failing run',
      { ...NO_PROBE, ok: false, at: T0 - 1000, firstFailureAt: T0 - 9000 },
      ok,
      { firstFailureAt: null, lastOkAt: T0, error: null },
    ],
  ];
  for (const [name, before, result, want] of rows) t.match(nextProbeView(before, result, T0), want, name);
});

t.test('the status of the backoff and failed states', async (t) => {
  const view = (memory: Partial<StatusView['memory']>): StatusView => ({
    memory: { ...freshStepMemory(T0), ...memory },
    desired: 'running',
    mode: 'always',
    onDemand: null,
    info: {
      backend: 'qemu',
      backendReason: 'auto',
      accel: 'tcg',
      arch: 'x86_64',
      sshPort: 31022,
      configPath: '/c',
      stateDir: '/s',
      version: '1',
    },
    vm: null,
    image: null,
    restarts: 3,
    lastExit: null,
    errors: new Map(),
    daemon: { pid: 1, startedAt: T0 },
  });
  t.match(
    renderStatus(view({ state: 'backoff', consecutiveFailures: 2, backoffUntil: T0 + 4000 })),
    { backoff: { attempt: 3, nextStartAt: '2025-01-01T00:00:04.000Z' }, failedReason: null, healthy: false },
    'backoff: the next attempt and when it is due',
  );
  t.match(
    renderStatus(view({ state: 'failed', consecutiveFailures: 5, failedReason: 'gave up' })),
    { backoff: { attempt: 5, nextStartAt: null }, failedReason: 'gave up' },
    'failed: how many attempts, and why',
  );
  t.match(
    renderStatus(view({ state: 'stopped', failedReason: 'old news' })),
    { backoff: null, failedReason: null },
    'no failure reason outside failed',
  );
});

t.test('the boot to ready figure', async (t) => {
  const handle = { pid: 9, startedAt: new Date(T0).toISOString() } as never;
  const view = (adopted: boolean, readyAt: number | null): StatusView => ({
    memory: { ...freshStepMemory(T0), state: readyAt === null ? 'starting' : 'running' },
    desired: 'running',
    info: {
      backend: 'qemu',
      backendReason: 'auto',
      accel: 'tcg',
      arch: 'x86_64',
      sshPort: 31022,
      configPath: '/c',
      stateDir: '/s',
      version: '1',
    },
    vm: { handle, adopted, probe: { ...NO_PROBE, ok: readyAt !== null, readyAt, latencyMs: 650 } },
    mode: 'always',
    onDemand: null,
    image: null,
    restarts: 0,
    lastExit: null,
    errors: new Map(),
    daemon: { pid: 1, startedAt: T0 },
  });
  t.match(
    renderStatus(view(false, T0 + 4300)),
    { vm: { readyAt: '2025-01-01T00:00:04.300Z', bootToReadyMs: 4300 }, probe: { latencyMs: 650 } },
    'from the VM start to its first Nix answer, beside the probe latency',
  );
  t.match(
    renderStatus(view(false, null)).vm,
    { readyAt: null, bootToReadyMs: null },
    'not ready yet: no figure',
  );
  t.match(
    renderStatus(view(true, T0 + 4300)).vm,
    { readyAt: '2025-01-01T00:00:04.300Z', bootToReadyMs: null },
    'an adopted VM booted under another daemon: no boot figure',
  );
});
