// The health answer's reason, for each state the builder can be in.
import t from 'tap';
import { healthOf } from '../../daemon/api/health.js';
import { sampleStatus } from './fixtures/fake-controller.js';

const probeDown = {
  ok: false,
  check: 'nix' as const,
  latencyMs: null,
  sshLatencyMs: null,
  nixVersion: null,
  at: null,
  nixAt: null,
  error: 'connection refused',
};

t.test('a healthy builder is healthy with its state and no reason', async (t) => {
  t.same(healthOf(sampleStatus()), { healthy: true, state: 'running' });
});

const cases: Array<[string, Parameters<typeof sampleStatus>[0], string]> = [
  [
    'failed names the failure',
    { state: 'failed', failedReason: '5 crashes in 10 minutes' },
    'failed: 5 crashes in 10 minutes',
  ],
  ['stopped on request says so', { state: 'stopped', desired: 'stopped' }, 'stopped on request'],
  ['stopping', { state: 'stopping' }, 'stopping'],
  [
    'backoff names the last exit and the next start',
    {
      state: 'backoff',
      lastExit: { code: 1, signal: null, reason: 'exited with code 1', at: '2025-01-01T00:00:00.000Z' },
      backoff: { attempt: 2, nextStartAt: '2025-01-01T00:00:04.000Z' },
    },
    'waiting to restart (last exit: exited with code 1); next start at 2025-01-01T00:00:04.000Z',
  ],
  ['starting without a probe error', { state: 'starting' }, 'starting: waiting for SSH'],
  [
    'starting with a probe error',
    { state: 'starting', probe: probeDown },
    'starting: SSH probe not answering yet (connection refused)',
  ],
  [
    'degraded names the probe error',
    { state: 'degraded', probe: probeDown },
    'SSH probe failing: connection refused',
  ],
];
for (const [name, patch, reason] of cases) {
  t.test(`unhealthy: ${name}`, async (t) => {
    const status = sampleStatus({ ...patch, healthy: false });
    t.same(healthOf(status), { healthy: false, state: status.state, reason });
  });
}
