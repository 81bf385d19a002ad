// The reconcile table (docs: DESIGN.md), one row per behaviour. Times are offsets from NOW;
// random is 0.5 (no jitter) unless a row says otherwise.
import t from 'tap';
import type { BuilderState } from '../../daemon/controller.js';
import { formatDuration, reconcileStep } from '../../daemon/reconciler/reconcile-step.js';
import {
  freshStepMemory,
  resumeStepMemory,
  policyFromSettings,
  type Action,
  type StepMemory,
  type Observed,
  type ObservedExit,
  type ObservedProbe,
  type Policy,
  type StepDesired,
} from '../../daemon/reconciler/types.js';
import { noProbe, testPolicy } from './fixtures.js';

const NOW = 1_000_000;
const policy: Policy = testPolicy;
const none: Observed = {
  process: 'none',
  processStartedAt: null,
  exit: null,
  probe: noProbe,
  start: null,
  stopFailure: null,
  configNeedsRestart: false,
  restartRequested: false,
  explicitStart: false,
  configChanged: null,
};
const up = (startedAgo: number, probe: Partial<ObservedProbe> = {}): Partial<Observed> => ({
  process: 'up',
  processStartedAt: NOW - startedAgo,
  probe: { ...noProbe, ...probe },
});
const crash = (over: Partial<ObservedExit> = {}): ObservedExit => ({
  at: NOW,
  code: 1,
  signal: null,
  reason: 'exited with code 1',
  requested: false,
  everHealthy: false,
  ...over,
});
/** Healthy `ago` ms ago; Nix last answered `nixAgo` ms ago (that same probe by default). */
const healthyProbe = (ago = 100, nixAgo = ago): Partial<ObservedProbe> => ({
  ok: true,
  at: NOW - ago,
  lastOkAt: NOW - ago,
  lastNixOkAt: NOW - nixAgo,
});
const failingProbe = (since: number, lastOk: number | null = null): Partial<ObservedProbe> => ({
  ok: false,
  at: NOW - 500,
  firstFailureAt: NOW - since,
  lastOkAt: lastOk === null ? null : NOW - lastOk,
  error: 'connection refused',
});
const crashed = {
  at: NOW - 5000,
  code: 1,
  signal: null,
  reason: 'exited with code 1',
  kind: 'crash' as const,
};

interface Row {
  name: string;
  desired?: StepDesired;
  observed?: Partial<Observed>;
  memory?: Partial<StepMemory>;
  policy?: Partial<Policy>;
  random?: number;
  want: {
    state: BuilderState;
    actions?: Action[];
    wakeAfterMs?: number | null;
    /** Matched, so nested objects may list only the fields that matter. */
    memory?: Partial<Record<keyof StepMemory, unknown>>;
    reason?: RegExp;
  };
}

const rows: Row[] = [
  // desired running, no process
  {
    name: 'running wanted and nothing runs: start the VM',
    want: { state: 'starting', actions: [{ type: 'start', cause: 'desired' }], wakeAfterMs: 1000 },
  },
  {
    name: 'a crash waits the initial delay in backoff',
    memory: { state: 'running', healthySince: NOW - 5000 },
    observed: { exit: crash() },
    want: {
      state: 'backoff',
      actions: [],
      wakeAfterMs: 1000,
      memory: {
        consecutiveFailures: 1,
        backoffUntil: NOW + 1000,
        lastExit: { kind: 'crash', reason: 'exited with code 1' },
      },
      reason: /restarting in 1 s after 1 failed start in a row \(last: exited with code 1\)/,
    },
  },
  {
    name: 'the second failed start in a row waits twice as long',
    memory: { state: 'starting', consecutiveFailures: 1 },
    observed: { exit: crash() },
    want: { state: 'backoff', wakeAfterMs: 2000, memory: { consecutiveFailures: 2 } },
  },
  {
    name: 'jitter spreads the backoff delay',
    memory: { state: 'starting', consecutiveFailures: 1 },
    observed: { exit: crash() },
    random: 0,
    want: { state: 'backoff', wakeAfterMs: 1600 },
  },
  {
    name: 'the backoff delay stops growing at the cap',
    memory: { state: 'starting', consecutiveFailures: 12 },
    policy: { maxAttempts: 100 },
    observed: { exit: crash() },
    want: { state: 'backoff', wakeAfterMs: 60_000 },
  },
  {
    name: 'the backoff counts from the exit, not from when the step ran',
    memory: { state: 'running', healthySince: NOW - 10_000 },
    observed: { exit: crash({ at: NOW - 400 }) },
    want: { state: 'backoff', wakeAfterMs: 600 },
  },
  {
    name: 'still in backoff: wait out the rest of the delay',
    memory: { state: 'backoff', consecutiveFailures: 2, backoffUntil: NOW + 700, lastExit: crashed },
    want: { state: 'backoff', actions: [], wakeAfterMs: 700 },
  },
  {
    name: 'backoff over: start again, as a restart after a crash',
    memory: { state: 'backoff', consecutiveFailures: 2, backoffUntil: NOW - 1, lastExit: crashed },
    want: { state: 'starting', actions: [{ type: 'start', cause: 'crash' }], memory: { backoffUntil: null } },
  },
  {
    name: 'maxAttempts failed starts in a row: failed, the reason kept, no start',
    memory: { state: 'starting', consecutiveFailures: 4 },
    observed: { exit: crash({ reason: 'qemu: could not open disk' }) },
    want: {
      state: 'failed',
      actions: [],
      wakeAfterMs: null,
      memory: { consecutiveFailures: 5 },
      reason: /^gave up after 5 failed starts in a row \(last: qemu: could not open disk\); fix the cause/,
    },
  },
  {
    name: 'failed stays failed: no start without an explicit start or a config change',
    memory: { state: 'failed', consecutiveFailures: 5, failedReason: 'gave up', lastExit: crashed },
    want: { state: 'failed', actions: [], wakeAfterMs: null, reason: /^gave up$/ },
  },
  {
    name: 'an explicit start from failed tries again with a full set of attempts',
    memory: { state: 'failed', consecutiveFailures: 5, failedReason: 'gave up', lastExit: crashed },
    observed: { explicitStart: true },
    want: {
      state: 'starting',
      actions: [{ type: 'start', cause: 'desired' }],
      memory: { consecutiveFailures: 0, failedReason: null },
    },
  },
  {
    name: 'any config change while failed tries again',
    memory: { state: 'failed', consecutiveFailures: 5, failedReason: 'gave up', lastExit: crashed },
    observed: { configChanged: { needsRestart: false } },
    want: {
      state: 'starting',
      actions: [{ type: 'start', cause: 'desired' }],
      memory: { consecutiveFailures: 0 },
    },
  },
  {
    name: 'an explicit start during backoff starts at once',
    memory: { state: 'backoff', consecutiveFailures: 3, backoffUntil: NOW + 30_000, lastExit: crashed },
    observed: { explicitStart: true },
    want: {
      state: 'starting',
      actions: [{ type: 'start', cause: 'desired' }],
      memory: { consecutiveFailures: 0 },
    },
  },
  {
    name: 'a config change that needs no new VM leaves the backoff wait alone',
    memory: { state: 'backoff', consecutiveFailures: 3, backoffUntil: NOW + 30_000, lastExit: crashed },
    observed: { configChanged: { needsRestart: false } },
    want: { state: 'backoff', actions: [], wakeAfterMs: 30_000, memory: { consecutiveFailures: 3 } },
  },
  {
    name: 'a config change that changes the VM skips the backoff wait',
    memory: { state: 'backoff', consecutiveFailures: 3, backoffUntil: NOW + 30_000, lastExit: crashed },
    observed: { configChanged: { needsRestart: true } },
    want: {
      state: 'starting',
      actions: [{ type: 'start', cause: 'desired' }],
      memory: { consecutiveFailures: 0 },
    },
  },
  {
    name: 'a guest reboot starts the VM again at once and is not a failure',
    memory: { state: 'running', consecutiveFailures: 2, healthySince: NOW - 5000 },
    observed: { exit: crash({ code: 2, reason: 'guest rebooted', reboot: true, everHealthy: true }) },
    want: {
      state: 'starting',
      actions: [{ type: 'start', cause: 'reboot' }],
      memory: { consecutiveFailures: 2, backoffUntil: null, lastExit: { kind: 'reboot' } },
    },
  },
  {
    name: 'a reboot before the guest ever answered is a boot failure, like a crash',
    memory: { state: 'starting', consecutiveFailures: 1 },
    observed: { exit: crash({ code: 2, reason: 'guest rebooted', reboot: true, everHealthy: false }) },
    want: {
      state: 'backoff',
      actions: [],
      wakeAfterMs: 2000,
      memory: { consecutiveFailures: 2, lastExit: { kind: 'crash', reason: 'guest rebooted' } },
    },
  },
  {
    name: 'a crash after a stable healthy run counts as the first failure of a new series',
    memory: { state: 'running', consecutiveFailures: 3, healthySince: NOW - 120_000 },
    observed: { exit: crash() },
    want: {
      state: 'backoff',
      actions: [{ type: 'reset-backoff', failures: 3 }],
      wakeAfterMs: 1000,
      memory: { consecutiveFailures: 1 },
    },
  },
  {
    name: 'after a controlled restart the VM starts at once',
    memory: { state: 'stopping', consecutiveFailures: 1 },
    observed: { exit: crash({ code: 0, reason: 'guest powered off', requested: true }) },
    want: {
      state: 'starting',
      actions: [{ type: 'start', cause: 'restart' }],
      memory: { consecutiveFailures: 1, lastExit: { kind: 'requested' } },
    },
  },
  {
    name: 'after a health restart the next start waits out its backoff',
    memory: { state: 'stopping', consecutiveFailures: 1, backoffUntil: NOW + 800 },
    observed: { exit: crash({ code: 0, reason: 'guest powered off', requested: true }) },
    want: { state: 'backoff', actions: [], wakeAfterMs: 800, memory: { consecutiveFailures: 1 } },
  },
  {
    name: 'running wanted while a restart is stopping the VM: wait for the exit',
    memory: { state: 'stopping' },
    observed: { process: 'stopping', processStartedAt: NOW - 60_000 },
    want: { state: 'stopping', actions: [], wakeAfterMs: 15_000 },
  },

  // operations in flight and their results
  {
    name: 'a start in flight (building the image): starting, no second start, its result wakes the loop',
    memory: { state: 'starting' },
    observed: { start: { phase: 'preparing', cancelling: false } },
    want: { state: 'starting', actions: [], wakeAfterMs: 10_000, reason: /preparing the guest image/ },
  },
  {
    name: 'a start spawning the hypervisor: still starting, nothing asked',
    memory: { state: 'starting' },
    observed: { start: { phase: 'launching', cancelling: false } },
    want: { state: 'starting', actions: [], reason: /launching the hypervisor/ },
  },
  {
    name: 'a stop requested during a start: cancel that start, stopping until it has ended',
    desired: 'stopped',
    memory: { state: 'starting' },
    observed: { start: { phase: 'preparing', cancelling: false } },
    want: {
      state: 'stopping',
      actions: [{ type: 'cancel-start', reason: 'stop requested' }],
      wakeAfterMs: 15_000,
      reason: /cancelling the start in progress/,
    },
  },
  {
    name: 'a cancelled start still running: no second cancel',
    desired: 'stopped',
    memory: { state: 'stopping' },
    observed: { start: { phase: 'preparing', cancelling: true } },
    want: { state: 'stopping', actions: [], wakeAfterMs: 15_000 },
  },
  {
    name: 'the cancelled start ended without a VM: stopped',
    desired: 'stopped',
    memory: { state: 'stopping' },
    want: { state: 'stopped', actions: [], wakeAfterMs: null },
  },
  {
    name: 'the cancelled start had spawned its VM already: stop it',
    desired: 'stopped',
    memory: { state: 'stopping' },
    observed: up(100),
    want: { state: 'stopping', actions: [{ type: 'stop', reason: 'stop requested' }] },
  },
  {
    name: 'started again while the cancelled start runs: wait for it to end, then start',
    memory: { state: 'stopping' },
    observed: { start: { phase: 'preparing', cancelling: true }, explicitStart: true },
    want: {
      state: 'starting',
      actions: [],
      wakeAfterMs: 15_000,
      reason: /waiting for the cancelled start to end/,
    },
  },
  {
    name: 'a start in flight ended in failure: counted like a crash at boot, backoff',
    memory: { state: 'starting' },
    observed: { exit: crash({ code: null, reason: 'could not start the VM: qemu: not found' }) },
    want: { state: 'backoff', actions: [], wakeAfterMs: 1000, memory: { consecutiveFailures: 1 } },
  },
  {
    name: 'failed while a start is in flight (a health give-up elsewhere): cancel it',
    memory: { state: 'failed', consecutiveFailures: 5, failedReason: 'gave up' },
    observed: { start: { phase: 'preparing', cancelling: false } },
    want: { state: 'failed', actions: [{ type: 'cancel-start', reason: 'gave up' }], wakeAfterMs: 15_000 },
  },
  {
    name: 'a stop that failed a moment ago is not asked again before the retry interval',
    desired: 'stopped',
    memory: { state: 'stopping' },
    observed: { ...up(5000), stopFailure: { at: NOW - 4000, error: 'QMP socket gone' } },
    want: {
      state: 'stopping',
      actions: [],
      wakeAfterMs: 11_000,
      reason: /^the stop failed \(QMP socket gone\); trying again in 11 s$/,
    },
  },
  {
    name: 'a stop that failed a retry interval ago is asked again',
    desired: 'stopped',
    memory: { state: 'stopping' },
    observed: { ...up(30_000), stopFailure: { at: NOW - 15_000, error: 'QMP socket gone' } },
    want: { state: 'stopping', actions: [{ type: 'stop', reason: 'stop requested' }], wakeAfterMs: 15_000 },
  },
  {
    name: 'a restart whose stop failed retries the stop, and counts no second failure',
    memory: { state: 'stopping', consecutiveFailures: 1 },
    observed: { ...up(90_000, failingProbe(89_000)), stopFailure: { at: NOW - 20_000, error: 'timeout' } },
    want: {
      state: 'stopping',
      actions: [{ type: 'stop', reason: 'the last stop failed' }],
      memory: { consecutiveFailures: 1 },
    },
  },

  // desired running, process up
  {
    name: 'a new VM with no probe result yet is starting and gets probed',
    memory: { state: 'starting' },
    observed: up(100),
    want: { state: 'starting', actions: [{ type: 'probe', check: 'nix' }], wakeAfterMs: 1000 },
  },
  {
    name: 'probe failing within the boot grace: still starting, probed again when due',
    memory: { state: 'starting' },
    observed: up(10_000, failingProbe(9000)),
    want: { state: 'starting', actions: [], wakeAfterMs: 500, reason: /^booting/ },
  },
  {
    name: 'the boot grace ending wakes the loop even between probes',
    memory: { state: 'starting' },
    observed: up(29_800, failingProbe(29_000)),
    want: { state: 'starting', actions: [], wakeAfterMs: 200 },
  },
  {
    name: 'probe failing after the boot grace: degraded',
    memory: { state: 'starting' },
    observed: up(40_000, failingProbe(39_000)),
    want: {
      state: 'degraded',
      actions: [],
      wakeAfterMs: 500,
      reason: /^not healthy 40 s after the start: connection refused$/,
    },
  },
  {
    name: 'a probe in flight is not started twice, and the loop still wakes',
    memory: { state: 'starting' },
    observed: up(40_000, { ...failingProbe(39_000), at: NOW - 5000, inFlight: true }),
    want: { state: 'degraded', actions: [], wakeAfterMs: 1000 },
  },
  {
    name: 'never healthy for the grace plus degradedRestartMs: restart as a failed start with backoff',
    memory: { state: 'degraded' },
    observed: up(90_000, failingProbe(89_000)),
    want: {
      state: 'stopping',
      actions: [
        {
          type: 'restart',
          cause: 'health',
          reason: 'never became healthy in 1 min 30 s: connection refused',
        },
      ],
      memory: { consecutiveFailures: 1, backoffUntil: NOW + 1000 },
    },
  },
  {
    name: 'a VM that was healthy is degraded from its first failing probe, boot grace or not',
    memory: { state: 'running', healthySince: NOW - 4000 },
    observed: up(5000, failingProbe(1000, 1500)),
    want: {
      state: 'degraded',
      actions: [],
      memory: { healthySince: null },
      reason: /^the SSH probe is failing/,
    },
  },
  {
    name: 'a healthy VM failing for degradedRestartMs is restarted',
    memory: { state: 'degraded' },
    observed: up(600_000, failingProbe(60_000, 61_000)),
    want: {
      state: 'stopping',
      actions: [{ type: 'restart', cause: 'health', reason: 'unhealthy for 1 min: connection refused' }],
      memory: { consecutiveFailures: 1 },
    },
  },
  {
    name: 'the last allowed health restart ends in failed and stops the VM',
    memory: { state: 'degraded', consecutiveFailures: 4 },
    observed: up(90_000, failingProbe(89_000)),
    want: {
      state: 'failed',
      actions: [{ type: 'stop', reason: 'never became healthy in 1 min 30 s: connection refused' }],
      wakeAfterMs: 15_000,
      memory: { consecutiveFailures: 5 },
      reason: /^gave up after 5 failed starts in a row \(last: never became healthy/,
    },
  },
  {
    name: 'failed with the VM still up: stop it again',
    memory: { state: 'failed', consecutiveFailures: 5, failedReason: 'gave up' },
    observed: up(90_000, failingProbe(89_000)),
    want: { state: 'failed', actions: [{ type: 'stop', reason: 'gave up' }], wakeAfterMs: 15_000 },
  },
  {
    name: 'probe ok: running and healthy, next probe after the interval',
    memory: { state: 'starting' },
    observed: up(8000, healthyProbe(100)),
    want: { state: 'running', actions: [], wakeAfterMs: 9900, memory: { healthySince: NOW - 100 } },
  },
  {
    name: 'probe due while healthy, Nix answered recently: the cheap SSH check',
    memory: { state: 'running', healthySince: NOW - 20_000 },
    observed: up(30_000, healthyProbe(10_000)),
    want: { state: 'running', actions: [{ type: 'probe', check: 'ssh' }], wakeAfterMs: 10_000 },
  },
  {
    name: 'probe due while healthy and the Nix probe due too: the Nix probe',
    memory: { state: 'running', healthySince: NOW - 70_000 },
    observed: up(80_000, healthyProbe(10_000, 60_000)),
    want: { state: 'running', actions: [{ type: 'probe', check: 'nix' }], wakeAfterMs: 10_000 },
  },
  {
    name: 'the Nix probe due before the next SSH check: wake for it, probe Nix then',
    memory: { state: 'running', healthySince: NOW - 20_000 },
    policy: { nixProbeIntervalMs: 15_000 },
    observed: up(30_000, healthyProbe(2000, 12_000)),
    want: { state: 'running', actions: [], wakeAfterMs: 3000 },
  },
  {
    name: 'a failed SSH check of a healthy VM: degraded at once, and the next probe is a Nix probe',
    memory: { state: 'running', healthySince: NOW - 20_000 },
    observed: up(30_000, {
      ok: false,
      at: NOW - 1000,
      firstFailureAt: NOW - 1000,
      lastOkAt: NOW - 11_000,
      lastNixOkAt: NOW - 21_000,
      error: 'no SSH banner',
    }),
    want: {
      state: 'degraded',
      actions: [{ type: 'probe', check: 'nix' }],
      reason: /^the SSH probe is failing: no SSH banner/,
    },
  },
  {
    name: 'healthy only by an SSH check (no Nix answer from this VM): the next probe is a Nix probe',
    memory: { state: 'running', healthySince: NOW - 20_000 },
    observed: up(30_000, { ...healthyProbe(10_000), lastNixOkAt: NOW - 40_000 }),
    want: { state: 'running', actions: [{ type: 'probe', check: 'nix' }] },
  },
  {
    name: 'healthy but not yet stable: wake when the stable period ends',
    memory: { state: 'running', consecutiveFailures: 2, healthySince: NOW - 55_000 },
    observed: up(60_000, healthyProbe(100)),
    want: { state: 'running', actions: [], wakeAfterMs: 5000, memory: { consecutiveFailures: 2 } },
  },
  {
    name: 'healthy for the stable period: the failure count is reset',
    memory: { state: 'running', consecutiveFailures: 2, healthySince: NOW - 60_000 },
    observed: up(70_000, healthyProbe(100)),
    want: {
      state: 'running',
      actions: [{ type: 'reset-backoff', failures: 2 }],
      wakeAfterMs: 9900,
      memory: { consecutiveFailures: 0 },
    },
  },
  {
    name: 'a probe result from before this process started is ignored',
    memory: { state: 'starting' },
    observed: { ...up(100), probe: { ...noProbe, ok: true, at: NOW - 200, lastOkAt: NOW - 200 } },
    want: { state: 'starting', actions: [{ type: 'probe', check: 'nix' }] },
  },
  {
    name: 'an adopted VM that probes ok is running at once',
    memory: freshStepMemory(NOW),
    observed: up(3_600_000, healthyProbe(10)),
    want: { state: 'running', actions: [] },
  },
  {
    name: 'a config change needing a new VM restarts a running VM, not counted as a failure',
    memory: { state: 'running', consecutiveFailures: 1, healthySince: NOW - 1000 },
    observed: { ...up(5000, healthyProbe()), configNeedsRestart: true },
    want: {
      state: 'stopping',
      actions: [
        { type: 'restart', cause: 'config', reason: 'the config changed in a way that needs a new VM' },
      ],
      wakeAfterMs: 15_000,
      memory: { consecutiveFailures: 1 },
    },
  },
  {
    name: 'a restart request replaces a running VM',
    memory: { state: 'running', healthySince: NOW - 1000 },
    observed: { ...up(5000, healthyProbe()), restartRequested: true },
    want: {
      state: 'stopping',
      actions: [{ type: 'restart', cause: 'requested', reason: 'restart requested' }],
    },
  },

  // desired stopped
  {
    name: 'stopped wanted and the VM is up: stop it, waking in case the stop stalls',
    desired: 'stopped',
    memory: { state: 'running', healthySince: NOW - 1000 },
    observed: up(5000, healthyProbe()),
    want: { state: 'stopping', actions: [{ type: 'stop', reason: 'stop requested' }], wakeAfterMs: 15_000 },
  },
  {
    name: 'stopped wanted while the VM is stopping: no second stop',
    desired: 'stopped',
    memory: { state: 'stopping' },
    observed: { process: 'stopping', processStartedAt: NOW - 5000 },
    want: { state: 'stopping', actions: [], wakeAfterMs: 15_000 },
  },
  {
    name: 'stopped wanted and nothing runs: stopped, nothing to wake for',
    desired: 'stopped',
    memory: { state: 'stopping' },
    observed: { exit: crash({ code: 0, reason: 'guest powered off', requested: true }) },
    want: { state: 'stopped', actions: [], wakeAfterMs: null, memory: { consecutiveFailures: 0 } },
  },
  {
    name: 'a stop request ends a crash loop: failed becomes stopped',
    desired: 'stopped',
    memory: { state: 'failed', consecutiveFailures: 5, failedReason: 'gave up' },
    want: {
      state: 'stopped',
      actions: [],
      memory: { failedReason: null, consecutiveFailures: 0, backoffUntil: null },
    },
  },
  {
    name: 'a crash while stopped is wanted is not a failure',
    desired: 'stopped',
    memory: { state: 'stopping', consecutiveFailures: 1 },
    observed: { exit: crash() },
    want: { state: 'stopped', actions: [], memory: { consecutiveFailures: 0, lastExit: { kind: 'crash' } } },
  },
  {
    name: 'a stop with no grace still retries no faster than once a second',
    desired: 'stopped',
    policy: { stopGraceMs: 0 },
    observed: up(5000),
    want: { state: 'stopping', wakeAfterMs: 1000 },
  },
  // on demand: asleep is off, with the failures kept
  {
    name: 'asleep with a VM up: power it off, saying it was idle',
    desired: 'asleep',
    observed: up(60_000, healthyProbe()),
    memory: { state: 'running' },
    want: {
      state: 'stopping',
      actions: [{ type: 'stop', reason: 'on demand: no connection for the idle time' }],
      reason: /^on demand: no connection for the idle time: powering the VM off$/,
    },
  },
  {
    name: 'asleep and off: stopped, waiting for the next connection',
    desired: 'asleep',
    want: { state: 'stopped', actions: [], wakeAfterMs: null, reason: /^asleep \(on demand\)/ },
  },
  {
    name: 'asleep keeps the failures in a row and the backoff for the next wake-up',
    desired: 'asleep',
    memory: { state: 'backoff', consecutiveFailures: 2, backoffUntil: NOW + 4000 },
    want: { state: 'stopped', memory: { consecutiveFailures: 2, backoffUntil: NOW + 4000 } },
  },
  {
    name: 'asleep after giving up stays failed, with the reason',
    desired: 'asleep',
    memory: { state: 'failed', consecutiveFailures: 5, failedReason: 'gave up after 5 failed starts' },
    want: { state: 'failed', actions: [], reason: /^gave up after 5 failed starts$/ },
  },
  {
    name: 'woken in backoff: the start waits for the backoff deadline',
    memory: { state: 'stopped', consecutiveFailures: 2, backoffUntil: NOW + 4000 },
    want: { state: 'backoff', actions: [], wakeAfterMs: 4000 },
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const res = reconcileStep({
      desired: row.desired ?? 'running',
      observed: { ...none, ...row.observed },
      memory: { ...freshStepMemory(NOW - 1000), ...row.memory },
      now: NOW,
      policy: { ...policy, ...row.policy },
      random: row.random ?? 0.5,
    });
    t.equal(res.state, row.want.state, 'state');
    t.equal(res.memory.state, row.want.state, 'the memory remembers the state');
    if (row.want.actions) t.same(res.actions, row.want.actions, 'actions');
    if (row.want.wakeAfterMs !== undefined) t.equal(res.wakeAfterMs, row.want.wakeAfterMs, 'wakeAfterMs');
    if (row.want.memory) t.match(res.memory, row.want.memory, 'memory');
    if (row.want.reason) t.match(res.reason, row.want.reason, 'reason');
  });
}

t.test('a state change records when it happened; staying put keeps the old time', async (t) => {
  const base = { desired: 'running' as const, now: NOW, policy, random: 0.5 };
  const changed = reconcileStep({ ...base, observed: none, memory: freshStepMemory(NOW - 1000) });
  t.equal(changed.memory.lastStateChangeAt, NOW);
  const same = reconcileStep({
    ...base,
    observed: { ...none, ...up(10_000, failingProbe(9000)) },
    memory: { ...freshStepMemory(NOW - 1000), state: 'starting', lastStateChangeAt: NOW - 10_000 },
  });
  t.equal(same.memory.lastStateChangeAt, NOW - 10_000);
});

t.test('the step does not change the memory it was given', async (t) => {
  const memory: StepMemory = { ...freshStepMemory(NOW - 1000), state: 'running', healthySince: NOW - 5000 };
  const copy = structuredClone(memory);
  reconcileStep({
    desired: 'running',
    observed: { ...none, exit: crash() },
    memory,
    now: NOW,
    policy,
    random: 0.5,
  });
  t.same(memory, copy);
});

t.test('the config file settings map onto the policy', async (t) => {
  const p = policyFromSettings({
    restart: {
      initialDelayMs: 500,
      maxDelayMs: 9000,
      multiplier: 3,
      jitter: 0.1,
      maxAttempts: 4,
      stablePeriodMs: 7000,
    },
    probe: { intervalMs: 15_000, nixIntervalMs: 300_000, bootGraceMs: 120_000, degradedRestartMs: 180_000 },
    stopGraceMs: 20_000,
  });
  t.same(p, {
    initialDelayMs: 500,
    maxDelayMs: 9000,
    multiplier: 3,
    jitter: 0.1,
    maxAttempts: 4,
    stablePeriodMs: 7000,
    bootGraceMs: 120_000,
    degradedRestartMs: 180_000,
    probeIntervalMs: 15_000,
    nixProbeIntervalMs: 300_000,
    bootProbeIntervalMs: 1000,
    stopGraceMs: 20_000,
  });
});

t.test('durations in reasons read naturally', async (t) => {
  const rows: Array<[number, string]> = [
    [850, '850 ms'],
    [2500, '2.5 s'],
    [60_000, '1 min'],
    [200_000, '3 min 20 s'],
    [119_600, '2 min'],
  ];
  for (const [ms, text] of rows) t.equal(formatDuration(ms), text, `${ms} ms`);
});

t.test('a new daemon resumes what outlives a process, never a VM state of the earlier one', async (t) => {
  const saved = {
    ...freshStepMemory(0),
    consecutiveFailures: 2,
    backoffUntil: 9000,
    healthySince: 100,
    lastStateChangeAt: 50,
  };
  for (const state of ['starting', 'running', 'degraded', 'stopping'] as const) {
    const resumed = resumeStepMemory({ ...saved, state });
    t.equal(resumed.state, 'stopped', `${state} becomes stopped: this process has no VM yet`);
    t.equal(resumed.consecutiveFailures, 2, `${state}: failures in a row carry over`);
    t.equal(resumed.healthySince, null);
  }
  t.same(
    resumeStepMemory({ ...saved, state: 'backoff' }),
    { ...saved, state: 'backoff', healthySince: null },
    'a backoff keeps its deadline',
  );
  const failed = { ...saved, state: 'failed' as const, failedReason: 'kernel panic' };
  t.same(resumeStepMemory(failed), { ...failed, healthySince: null }, 'failed stays failed, with its reason');
});
