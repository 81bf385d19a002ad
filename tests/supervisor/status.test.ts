import t from 'tap';
import { freshStepMemory } from '../../daemon/reconciler/types.js';
import { NO_PROBE, nextProbeView, renderStatus, type StatusView } from '../../daemon/supervisor/status.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const ok = { ok: true, latencyMs: 10, nixVersion: '2.24.9', error: null };
const bad = { ok: false, latencyMs: null, nixVersion: '2.24.9', error: 'connection refused' };

t.test('the probe view', async (t) => {
  const rows: Array<[string, Parameters<typeof nextProbeView>[0], typeof ok | typeof bad, object]> = [
    [
      'a first success is the last success',
      NO_PROBE,
      ok,
      { ok: true, at: T0, lastOkAt: T0, firstFailureAt: null },
    ],
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
