// Properties of the step as a whole: run it against a simulated VM on a simulated clock and
// check that a broken VM ends in `failed` after a bounded number of starts, and sweep many
// inputs to check that no state waits without a wake-up or spins.
import t from 'tap';
import type { DesiredState } from '../../daemon/controller.js';
import { reconcileStep } from '../../daemon/reconciler/reconcile-step.js';
import {
  freshStepMemory,
  type StepMemory,
  type Observed,
  type ObservedExit,
  type ObservedProbe,
  type Policy,
} from '../../daemon/reconciler/types.js';
import { noProbe, testPolicy } from './fixtures.js';

const policy: Policy = testPolicy;

interface Sim {
  starts: number[];
  stops: number;
  steps: number;
  memory: StepMemory;
  waits: Array<number | null>;
}

/** Drives the step against a VM that `behaves` as told; the probe answers instantly. */
function simulate(
  behaviour: { crashAfterMs?: number; reboot?: boolean; healthy: boolean },
  random: () => number,
): Sim {
  let now = 0;
  let memory = freshStepMemory(now);
  let proc: { startedAt: number; probe: ObservedProbe } | null = null;
  let exit: ObservedExit | null = null;
  const sim: Sim = { starts: [], stops: 0, steps: 0, memory, waits: [] };
  for (; sim.steps < 10_000; sim.steps++) {
    if (proc && behaviour.crashAfterMs !== undefined && now >= proc.startedAt + behaviour.crashAfterMs) {
      exit = {
        at: proc.startedAt + behaviour.crashAfterMs,
        code: behaviour.reboot ? 2 : 1,
        signal: null,
        reason: behaviour.reboot ? 'guest rebooted' : 'exited with code 1',
        reboot: behaviour.reboot,
        requested: false,
        everHealthy: proc.probe.lastOkAt !== null,
      };
      proc = null;
    }
    const observed: Observed = {
      process: proc ? 'up' : 'none',
      processStartedAt: proc?.startedAt ?? null,
      exit,
      probe: proc?.probe ?? noProbe,
      start: null,
      stopFailure: null,
      configNeedsRestart: false,
      restartRequested: false,
      explicitStart: false,
      configChanged: null,
    };
    exit = null;
    const res = reconcileStep({ desired: 'running', observed, memory, now, policy, random: random() });
    memory = res.memory;
    sim.waits.push(res.wakeAfterMs);
    for (const a of res.actions) {
      if (a.type === 'start') {
        proc = { startedAt: now, probe: noProbe };
        sim.starts.push(now);
      } else if ((a.type === 'stop' || a.type === 'restart') && proc) {
        proc = null;
        sim.stops++;
        exit = {
          at: now,
          code: 0,
          signal: null,
          reason: 'guest powered off',
          requested: true,
          everHealthy: false,
        };
      } else if (a.type === 'probe' && proc) {
        const ok = behaviour.healthy;
        const p = proc.probe;
        proc.probe = {
          ok,
          at: now,
          firstFailureAt: ok ? null : (p.firstFailureAt ?? now),
          lastOkAt: ok ? now : p.lastOkAt,
          lastNixOkAt: ok ? now : p.lastNixOkAt,
          error: ok ? null : 'connection refused',
          inFlight: false,
        };
      }
    }
    const acted = res.actions.some((a) => a.type !== 'reset-backoff');
    if (!acted && res.wakeAfterMs === null) break;
    // Actions change what the next step sees: look again at once, as the supervisor does. An
    // exit wakes the loop too, before the step's own timer.
    const exitAt =
      proc && behaviour.crashAfterMs !== undefined ? proc.startedAt + behaviour.crashAfterMs : Infinity;
    if (!acted) now = Math.min(now + (res.wakeAfterMs ?? 0), Math.max(now, exitAt));
  }
  sim.memory = memory;
  return sim;
}

t.test(
  'a VM that crashes at every boot reaches failed after maxAttempts starts, waiting longer each time',
  async (t) => {
    const sim = simulate({ crashAfterMs: 3000, healthy: false }, () => 0.5);
    t.equal(sim.memory.state, 'failed');
    t.equal(sim.starts.length, policy.maxAttempts);
    const gaps = sim.starts.slice(1).map((s, i) => s - sim.starts[i]! - 3000);
    t.same(gaps, [1000, 2000, 4000, 8000], 'the wait after each crash doubles');
    t.ok(sim.steps < 100, `settled in ${sim.steps} steps`);
  },
);

t.test('a VM that never becomes healthy is restarted for health until it fails, then stopped', async (t) => {
  const sim = simulate({ healthy: false }, () => 0.5);
  t.equal(sim.memory.state, 'failed');
  t.equal(sim.starts.length, policy.maxAttempts);
  t.equal(sim.stops, policy.maxAttempts, 'every VM was stopped, the last one too');
  t.match(sim.memory.failedReason, /^gave up after 5 failed starts in a row \(last: never became healthy/);
});

t.test('a VM that crashes right after becoming healthy still ends in failed', async (t) => {
  // Healthy at the first probe, then gone 5 s later: inside the stable period, so it counts.
  const sim = simulate({ crashAfterMs: 5000, healthy: true }, () => 0.5);
  t.equal(sim.memory.state, 'failed');
  t.equal(sim.starts.length, policy.maxAttempts);
});

t.test('a guest that reboots during every boot (a kernel panic) ends in failed', async (t) => {
  const sim = simulate({ crashAfterMs: 2000, reboot: true, healthy: false }, () => 0.5);
  t.equal(sim.memory.state, 'failed');
  t.equal(sim.starts.length, policy.maxAttempts);
});

t.test('a healthy guest that reboots now and then is started again at once, every time', async (t) => {
  const sim = simulate({ crashAfterMs: 5000, reboot: true, healthy: true }, () => 0.5);
  t.equal(sim.steps, 10_000, 'ran until the simulation stopped it');
  t.equal(sim.memory.consecutiveFailures, 0);
  const gaps = new Set(sim.starts.slice(1).map((s, i) => s - sim.starts[i]!));
  t.same([...gaps], [5000], 'each start follows the reboot with no wait');
});

t.test('a VM that crashes only after a stable run keeps being restarted', async (t) => {
  const sim = simulate({ crashAfterMs: 120_000, healthy: true }, () => 0.5);
  t.equal(sim.steps, 10_000, 'ran until the simulation stopped it');
  t.equal(sim.memory.failedReason, null);
  t.ok(sim.starts.length > 20, `${sim.starts.length} starts`);
  t.ok(sim.memory.consecutiveFailures <= 1);
});

t.test('whatever the jitter draws, a crash loop ends in failed', async (t) => {
  let seed = 42;
  const lcg = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let run = 0; run < 50; run++) {
    const sim = simulate({ crashAfterMs: 100, healthy: false }, lcg);
    if (sim.memory.state !== 'failed' || sim.starts.length !== policy.maxAttempts) {
      t.fail(`run ${run}: ${sim.memory.state} after ${sim.starts.length} starts`);
    }
  }
  t.pass('50 runs with random jitter');
});

t.test('no input leaves a waiting state without a wake-up, or starts what it should not', async (t) => {
  const NOW = 1_000_000;
  const desires: DesiredState[] = ['running', 'stopped'];
  const processes: Observed['process'][] = ['none', 'up', 'stopping'];
  const probes: ObservedProbe[] = [
    noProbe,
    { ...noProbe, inFlight: true },
    {
      ok: true,
      at: NOW - 100,
      firstFailureAt: null,
      lastOkAt: NOW - 100,
      lastNixOkAt: NOW - 100,
      error: null,
      inFlight: false,
    },
    {
      ok: true,
      at: NOW - 100,
      firstFailureAt: null,
      lastOkAt: NOW - 100,
      lastNixOkAt: NOW - 100,
      error: null,
      inFlight: true,
    },
    {
      ok: false,
      at: NOW - 100,
      firstFailureAt: NOW - 200_000,
      lastOkAt: null,
      lastNixOkAt: null,
      error: 'x',
      inFlight: false,
    },
    {
      ok: false,
      at: NOW - 100,
      firstFailureAt: NOW - 2000,
      lastOkAt: NOW - 3000,
      lastNixOkAt: NOW - 30_000,
      error: 'x',
      inFlight: true,
    },
  ];
  const starts = [NOW - 1000, NOW - 40_000, NOW - 500_000];
  const states = ['stopped', 'starting', 'running', 'degraded', 'stopping', 'backoff', 'failed'] as const;
  const failures = [0, 2, 5];
  const backoffs = [null, NOW - 1, NOW + 5000];
  const exits: Array<ObservedExit | null> = [
    null,
    { at: NOW, code: 1, signal: null, reason: 'crash', requested: false, everHealthy: false },
    { at: NOW, code: 2, signal: null, reason: 'reboot', reboot: true, requested: false, everHealthy: true },
    { at: NOW, code: 2, signal: null, reason: 'reboot', reboot: true, requested: false, everHealthy: false },
    { at: NOW, code: 0, signal: null, reason: 'stopped', requested: true, everHealthy: true },
  ];
  const extras: Array<Partial<Observed>> = [
    {},
    { explicitStart: true },
    { configChanged: { needsRestart: false } },
    { configNeedsRestart: true, configChanged: { needsRestart: true } },
    { restartRequested: true },
    { start: { phase: 'preparing', cancelling: false } },
    { start: { phase: 'launching', cancelling: true } },
    { start: { phase: 'preparing', cancelling: false }, explicitStart: true },
    { stopFailure: { at: NOW - 100, error: 'x' } },
    { stopFailure: { at: NOW - 100_000, error: 'x' } },
  ];
  let checked = 0;
  const problems: string[] = [];
  for (const desired of desires)
    for (const process of processes)
      for (const probe of probes)
        for (const startedAt of starts)
          for (const state of states)
            for (const n of failures)
              for (const backoffUntil of backoffs)
                for (const exit of process === 'none' ? exits : [null])
                  for (const extra of extras) {
                    // A start operation ends as its VM comes up: the two are never seen together.
                    if (extra.start && process !== 'none') continue;
                    const memory: StepMemory = {
                      ...freshStepMemory(NOW - 10),
                      state,
                      consecutiveFailures: n,
                      backoffUntil,
                      failedReason: state === 'failed' ? 'gave up' : null,
                      healthySince: probe.ok ? NOW - 100 : null,
                    };
                    const observed: Observed = {
                      process,
                      processStartedAt: process === 'none' ? null : startedAt,
                      exit,
                      probe: process === 'none' ? noProbe : probe,
                      start: null,
                      stopFailure: null,
                      configNeedsRestart: false,
                      restartRequested: false,
                      explicitStart: false,
                      configChanged: null,
                      ...extra,
                    };
                    const res = reconcileStep({ desired, observed, memory, now: NOW, policy, random: 0.3 });
                    checked++;
                    const where = JSON.stringify({ desired, observed, memory, res });
                    const resting = res.state === 'stopped' || res.state === 'failed';
                    const idle = resting && process === 'none';
                    if (
                      !idle &&
                      !(res.wakeAfterMs !== null && Number.isFinite(res.wakeAfterMs) && res.wakeAfterMs > 0)
                    ) {
                      problems.push(`waits without a wake-up: ${where}`);
                    }
                    const kinds = res.actions
                      .map((a) => a.type)
                      .filter((k) => k !== 'probe' && k !== 'reset-backoff');
                    if (kinds.length > 1) problems.push(`more than one lifecycle action: ${where}`);
                    if (kinds.includes('start') && process !== 'none')
                      problems.push(`start over a live process: ${where}`);
                    if (kinds.includes('start') && extra.start)
                      problems.push(`a second start in flight: ${where}`);
                    if (kinds.includes('cancel-start') && (!extra.start || extra.start.cancelling)) {
                      problems.push(`cancel without a start to cancel: ${where}`);
                    }
                    const stopNow = kinds.includes('stop') || kinds.includes('restart');
                    if (stopNow && extra.stopFailure && extra.stopFailure.at > NOW - policy.stopGraceMs) {
                      problems.push(`a failed stop retried at once: ${where}`);
                    }
                    if ((kinds.includes('stop') || kinds.includes('restart')) && process !== 'up') {
                      problems.push(`stop without a process: ${where}`);
                    }
                    if (resting && kinds.includes('start'))
                      problems.push(`start while ${res.state}: ${where}`);
                    if (res.state === 'failed' && !res.memory.failedReason)
                      problems.push(`failed without a reason: ${where}`);
                  }
  t.same(problems.slice(0, 5), [], `${checked} inputs checked`);
});
