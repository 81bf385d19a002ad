// What start/stop/restart mean in each state, and when they are refused with a 409.
import t from 'tap';
import type { BuilderState, DesiredState } from '../../daemon/controller.js';
import {
  planDiskReset,
  planRequest,
  type Request,
  type RequestContext,
  type RequestPlan,
} from '../../daemon/supervisor/requests.js';

// [name, request, state, desired, vmUp, want, startInFlight?]
type Row = [string, Request, BuilderState, DesiredState, boolean, RequestPlan | RegExp, boolean?];
const start = { ok: true, desired: 'running', effect: 'explicit-start' } as const;
const noChange = { ok: true, desired: 'running', effect: 'none' } as const;

const rows: Row[] = [
  ['start from stopped starts', 'start', 'stopped', 'stopped', false, start],
  ['start from failed tries again', 'start', 'failed', 'running', false, start],
  ['start during backoff starts at once', 'start', 'backoff', 'running', false, start],
  ['start while running changes nothing that matters', 'start', 'running', 'running', true, start],
  [
    'start while stopping on request is accepted: the VM starts again once stopped',
    'start',
    'stopping',
    'stopped',
    true,
    start,
  ],
  [
    'start during a start that is still building its image is accepted',
    'start',
    'starting',
    'running',
    false,
    start,
    true,
  ],
  [
    'start while the start in flight is being cancelled is accepted',
    'start',
    'stopping',
    'stopped',
    false,
    start,
    true,
  ],
  ['start during a restart is accepted', 'start', 'stopping', 'running', true, start],
  [
    'stop while running stops',
    'stop',
    'running',
    'running',
    true,
    { ok: true, desired: 'stopped', effect: 'none' },
  ],
  [
    'stop while booting stops',
    'stop',
    'starting',
    'running',
    true,
    { ok: true, desired: 'stopped', effect: 'none' },
  ],
  [
    'stop while stopping is accepted again',
    'stop',
    'stopping',
    'stopped',
    true,
    { ok: true, desired: 'stopped', effect: 'none' },
  ],
  [
    'stop during a restart wins over it',
    'stop',
    'stopping',
    'running',
    true,
    { ok: true, desired: 'stopped', effect: 'none' },
  ],
  [
    'stop from failed is accepted',
    'stop',
    'failed',
    'running',
    false,
    { ok: true, desired: 'stopped', effect: 'none' },
  ],
  [
    'restart while running replaces the VM',
    'restart',
    'running',
    'running',
    true,
    { ok: true, desired: 'running', effect: 'replace-vm' },
  ],
  [
    'restart while degraded replaces the VM',
    'restart',
    'degraded',
    'running',
    true,
    { ok: true, desired: 'running', effect: 'replace-vm' },
  ],
  [
    'restart while booting is refused',
    'restart',
    'starting',
    'running',
    true,
    /still booting; restart it once it is running or degraded, or stop it/,
  ],
  [
    'restart while stopping on request starts again once stopped',
    'restart',
    'stopping',
    'stopped',
    true,
    start,
  ],
  [
    'restart during a restart is accepted and changes nothing',
    'restart',
    'stopping',
    'running',
    true,
    noChange,
  ],
  [
    'restart during a start with no VM yet is accepted and changes nothing',
    'restart',
    'starting',
    'running',
    false,
    noChange,
    true,
  ],
  [
    'stop during a start with no VM yet is accepted',
    'stop',
    'starting',
    'running',
    false,
    { ok: true, desired: 'stopped', effect: 'none' },
    true,
  ],
  ['restart from stopped starts', 'restart', 'stopped', 'stopped', false, start],
  ['restart during backoff starts at once', 'restart', 'backoff', 'running', false, start],
  ['restart from failed tries again', 'restart', 'failed', 'running', false, start],
];

for (const [name, request, state, desired, vmUp, want, startInFlight = false] of rows) {
  t.test(name, async (t) => {
    const plan = planRequest(request, { state, desired, vmUp, startInFlight, shuttingDown: false });
    if (want instanceof RegExp) t.match(plan, { ok: false, conflict: want });
    else t.same(plan, want);
  });
}

t.test('every request is refused once the daemon is shutting down', async (t) => {
  for (const request of ['start', 'stop', 'restart'] as const) {
    const plan = planRequest(request, {
      state: 'running',
      desired: 'running',
      vmUp: true,
      startInFlight: false,
      shuttingDown: true,
    });
    t.same(plan, { ok: false, conflict: 'the daemon is shutting down' }, request);
  }
});

t.test('disk reset: only while stopped or failed, with no VM and no start in flight', async (t) => {
  const ctx = (over: Partial<RequestContext>): RequestContext => ({
    state: 'stopped',
    desired: 'stopped',
    vmUp: false,
    startInFlight: false,
    shuttingDown: false,
    ...over,
  });
  const ok = { ok: true };
  const rows: Array<[string, Partial<RequestContext>, typeof ok | RegExp]> = [
    ['stopped', {}, ok],
    ['failed, wanted running', { state: 'failed', desired: 'running' }, ok],
    ['asleep in on-demand mode (stopped, wanted running)', { desired: 'running' }, ok],
    ['running', { state: 'running', desired: 'running', vmUp: true }, /^the builder is running: /],
    ['degraded', { state: 'degraded', desired: 'running', vmUp: true }, /^the builder is degraded: /],
    ['booting', { state: 'starting', desired: 'running', vmUp: true }, /^the builder is starting: /],
    ['building its image', { state: 'starting', desired: 'running', startInFlight: true }, /starting/],
    ['stopping', { state: 'stopping', vmUp: true }, /^the builder is stopping: /],
    [
      'in backoff (a start is due)',
      { state: 'backoff', desired: 'running' },
      /^the builder is waiting to start again \(backoff\): /,
    ],
    ['stopped, but a start just began', { startInFlight: true }, /^the builder is starting: /],
    [
      'failed with a VM still up',
      { state: 'failed', vmUp: true },
      /^the builder is failed with its VM still up: /,
    ],
    ['shutting down', { shuttingDown: true }, /^the daemon is shutting down$/],
  ];
  for (const [name, over, want] of rows) {
    const plan = planDiskReset(ctx(over));
    if (want instanceof RegExp) t.match(plan, { ok: false, conflict: want }, name);
    else t.same(plan, want, name);
  }
  t.match(planDiskReset(ctx({ state: 'running', vmUp: true })), {
    conflict: /only while the builder is stopped \(linuxkitctl stop, then linuxkitctl disk reset\)$/,
  });
});
