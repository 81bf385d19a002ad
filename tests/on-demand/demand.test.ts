// On-demand mode's decision as a table: what the step is asked for, and when the idle stop is due.
import t from 'tap';
import { decideDemand, type DemandInput } from '../../daemon/on-demand/demand.js';

const NOW = 1_000_000;
const IDLE = 60_000;
const base: DemandInput = {
  mode: 'on-demand',
  desired: 'running',
  wake: { at: NOW - 1000, by: 'a connection from 127.0.0.1:50000' },
  connections: { held: 0, open: 0, lastActivityAt: NOW - 1000 },
  now: NOW,
  idleStopAfterMs: IDLE,
};

const rows: Array<[string, Partial<DemandInput>, ReturnType<typeof decideDemand>]> = [
  [
    'always mode passes the desired state through',
    { mode: 'always', wake: null },
    { desired: 'running', idleStop: false, idleStopAt: null },
  ],
  [
    'stopped is off in any mode',
    { desired: 'stopped' },
    { desired: 'stopped', idleStop: false, idleStopAt: null },
  ],
  [
    'asleep until something wakes it',
    { wake: null },
    { desired: 'asleep', idleStop: false, idleStopAt: null },
  ],
  [
    'awake with no connection: the idle stop is due the idle time after the last activity',
    {},
    { desired: 'running', idleStop: false, idleStopAt: NOW - 1000 + IDLE },
  ],
  [
    'an open connection keeps it up however long ago it woke',
    {
      wake: { at: NOW - 100 * IDLE, by: 'x' },
      connections: { held: 0, open: 1, lastActivityAt: NOW - 50 * IDLE },
    },
    { desired: 'running', idleStop: false, idleStopAt: null },
  ],
  [
    'a held connection keeps it up',
    { connections: { held: 2, open: 0, lastActivityAt: NOW - 10 * IDLE } },
    { desired: 'running', idleStop: false, idleStopAt: null },
  ],
  [
    'idle for the idle time: asleep, and the idle stop is now',
    { wake: { at: NOW - 2 * IDLE, by: 'x' }, connections: { held: 0, open: 0, lastActivityAt: NOW - IDLE } },
    { desired: 'asleep', idleStop: true, idleStopAt: null },
  ],
  [
    'a start request after the last connection restarts the idle time',
    {
      wake: { at: NOW - 10, by: 'a start request' },
      connections: { held: 0, open: 0, lastActivityAt: NOW - 5 * IDLE },
    },
    { desired: 'running', idleStop: false, idleStopAt: NOW - 10 + IDLE },
  ],
  [
    'woken with no connection ever: idle from the wake-up',
    {
      wake: { at: NOW - 10, by: 'a start request' },
      connections: { held: 0, open: 0, lastActivityAt: null },
    },
    { desired: 'running', idleStop: false, idleStopAt: NOW - 10 + IDLE },
  ],
];

for (const [name, over, want] of rows) {
  t.test(name, async (t) => {
    t.same(decideDemand({ ...base, ...over }), want);
  });
}
