// One level-triggered reconcile step (controller-runtime style): from what is wanted, what is
// observed and what the loop remembers, decide the builder's state, what to do now and when
// to look again. Pure: no clock, no randomness, no I/O, so every behaviour is a table row.
//
// Failure accounting: a "failed start" is a VM that exited on its own before it had been
// healthy for the stable period, or one the step restarts because its probe kept failing.
// Each one grows the backoff; `maxAttempts` of them in a row end in `failed`, which only an
// explicit start or a config change leaves. A guest reboot (of a guest that had been healthy)
// and an exit the daemon asked for are not failures. In on-demand mode the builder is `asleep`
// between uses: off like `stopped`, with its failures kept for the next wake-up.
//
// Slow work (a start that builds the guest image, a stop that waits out its grace) runs beside
// the loop as operations; the step only sees them as observations (`start` in flight,
// `process: 'stopping'`, a `stopFailure`) and their results (a VM that is up, an exit), and asks
// for at most one of each kind at a time.
import type { BuilderState } from '../controller.js';
import { backoffDelay } from './backoff.js';
import type {
  Action,
  Observed,
  ObservedExit,
  ObservedStart,
  Policy,
  StartCause,
  StepDesired,
  StepInput,
  StepMemory,
  StepResult,
} from './types.js';

interface Decision {
  state: BuilderState;
  wake: number | null;
  reason: string;
}

/** A stop that did not finish is tried again no sooner than this. */
const MIN_STOP_RETRY_MS = 1000;

export function reconcileStep(input: StepInput): StepResult {
  const { desired, observed: o, now, policy: p, random } = input;
  const h: StepMemory = { ...input.memory };
  const actions: Action[] = [];

  if (o.exit) foldExit(h, o.exit, desired, p, random, actions);
  const fresh = desired === 'running' && wantsFreshChance(o, h);
  if (fresh) {
    h.consecutiveFailures = 0;
    h.backoffUntil = null;
    h.failedReason = null;
  }

  const d =
    desired === 'running'
      ? whenRunning(h, o, now, p, random, actions, fresh)
      : whenStopped(h, o, now, p, actions, desired === 'asleep');
  if (d.state !== input.memory.state) h.lastStateChangeAt = now;
  h.state = d.state;
  return {
    state: d.state,
    actions,
    wakeAfterMs: d.wake === null ? null : Math.max(1, Math.ceil(d.wake)),
    memory: h,
    reason: d.reason,
  };
}

function foldExit(
  h: StepMemory,
  exit: ObservedExit,
  desired: StepDesired,
  p: Policy,
  random: number,
  actions: Action[],
): void {
  const { requested, everHealthy, ...rest } = exit;
  // A reboot before the guest ever answered is a boot failure (a kernel panic with panic=N
  // reboots): counted like a crash, so a boot loop ends in `failed` instead of spinning.
  const kind = requested ? 'requested' : exit.reboot && everHealthy ? 'reboot' : 'crash';
  h.lastExit = { ...rest, kind };
  if (kind === 'reboot') h.backoffUntil = null;
  if (kind === 'crash' && desired === 'running' && h.failedReason === null) {
    resetIfStable(h, exit.at, p, actions);
    h.consecutiveFailures += 1;
    h.backoffUntil = exit.at + backoffDelay(h.consecutiveFailures, p, random);
  }
  h.healthySince = null;
}

/** An explicit start, or a config change that may have fixed the cause, earns a full set of attempts. */
function wantsFreshChance(o: Observed, h: StepMemory): boolean {
  if (o.explicitStart) return true;
  if (!o.configChanged) return false;
  return h.failedReason !== null || o.configChanged.needsRestart;
}

function resetIfStable(h: StepMemory, at: number, p: Policy, actions: Action[]): void {
  if (h.healthySince === null || h.consecutiveFailures === 0) return;
  if (at - h.healthySince < p.stablePeriodMs) return;
  actions.push({ type: 'reset-backoff', failures: h.consecutiveFailures });
  h.consecutiveFailures = 0;
  h.backoffUntil = null;
}

function whenStopped(
  h: StepMemory,
  o: Observed,
  now: number,
  p: Policy,
  actions: Action[],
  asleep: boolean,
): Decision {
  // Stopping on request ends any crash loop: the next start is a fresh one. Falling asleep does
  // not: the failures in a row, a backoff and `failed` stay for the next wake-up.
  if (!asleep) {
    h.consecutiveFailures = 0;
    h.backoffUntil = null;
    h.failedReason = null;
  }
  const why = asleep ? 'on demand: no connection for the idle time' : 'stop requested';
  if (o.process === 'up') {
    const stop = stopWhenDue(o, now, p, actions, { type: 'stop', reason: why });
    return {
      state: 'stopping',
      wake: stop.wake,
      reason: stop.reason ?? `${why}: powering the VM off`,
    };
  }
  if (o.process === 'stopping') {
    return { state: 'stopping', wake: stopRetry(p), reason: 'waiting for the VM to power off' };
  }
  if (o.start) {
    if (!o.start.cancelling) actions.push({ type: 'cancel-start', reason: why });
    return {
      state: 'stopping',
      wake: stopRetry(p),
      reason: `${why}: cancelling the start in progress`,
    };
  }
  if (!asleep) return { state: 'stopped', wake: null, reason: 'stopped on request' };
  if (h.failedReason !== null) return { state: 'failed', wake: null, reason: h.failedReason };
  return { state: 'stopped', wake: null, reason: 'asleep (on demand): the next connection starts the VM' };
}

function whenRunning(
  h: StepMemory,
  o: Observed,
  now: number,
  p: Policy,
  random: number,
  actions: Action[],
  fresh: boolean,
): Decision {
  if (h.failedReason !== null) {
    let wake: number | null = null;
    if (o.process === 'up')
      wake = stopWhenDue(o, now, p, actions, { type: 'stop', reason: h.failedReason }).wake;
    else if (o.process === 'stopping') wake = stopRetry(p);
    if (o.start) {
      if (!o.start.cancelling) actions.push({ type: 'cancel-start', reason: h.failedReason });
      wake ??= stopRetry(p);
    }
    return { state: 'failed', wake, reason: h.failedReason };
  }
  if (o.process === 'stopping') {
    return {
      state: 'stopping',
      wake: stopRetry(p),
      reason: 'waiting for the VM to exit before starting it again',
    };
  }
  if (o.process === 'none')
    return o.start ? whileStarting(o.start, p) : withoutProcess(h, now, p, actions, fresh);
  return withProcess(h, o, now, p, random, actions);
}

/** A start is in flight: its result (a VM, or a failed start) wakes the loop; the wake-up is a safety net. */
function whileStarting(start: ObservedStart, p: Policy): Decision {
  if (start.cancelling) {
    return {
      state: 'starting',
      wake: stopRetry(p),
      reason: 'waiting for the cancelled start to end, then starting again',
    };
  }
  const reason =
    start.phase === 'preparing'
      ? 'starting the VM: preparing the guest image and its files'
      : 'starting the VM: launching the hypervisor';
  return { state: 'starting', wake: p.probeIntervalMs, reason };
}

function withoutProcess(h: StepMemory, now: number, p: Policy, actions: Action[], fresh: boolean): Decision {
  const last = h.lastExit?.reason ?? 'unknown';
  if (h.consecutiveFailures >= p.maxAttempts) {
    h.failedReason = gaveUp(h.consecutiveFailures, last);
    h.backoffUntil = null;
    return { state: 'failed', wake: null, reason: h.failedReason };
  }
  if (h.backoffUntil !== null && h.backoffUntil > now) {
    const reason =
      `restarting in ${formatDuration(h.backoffUntil - now)} after ${plural(h.consecutiveFailures, 'failed start')} ` +
      `in a row (last: ${last})`;
    return { state: 'backoff', wake: h.backoffUntil - now, reason };
  }
  const cause = fresh ? 'desired' : startCause(h);
  actions.push({ type: 'start', cause });
  h.backoffUntil = null;
  h.healthySince = null;
  return { state: 'starting', wake: p.bootProbeIntervalMs, reason: startReason(cause, last) };
}

function withProcess(
  h: StepMemory,
  o: Observed,
  now: number,
  p: Policy,
  random: number,
  actions: Action[],
): Decision {
  if (o.stopFailure) {
    // A stop of this VM was asked for and failed: that decision stands (and was counted once);
    // only the stop is tried again.
    const stop = stopWhenDue(o, now, p, actions, { type: 'stop', reason: 'the last stop failed' });
    return {
      state: 'stopping',
      wake: stop.wake,
      reason: stop.reason ?? 'stopping the VM again: the last stop failed',
    };
  }
  if (o.configNeedsRestart || o.restartRequested) {
    const cause = o.configNeedsRestart ? 'config' : 'requested';
    const reason =
      cause === 'config' ? 'the config changed in a way that needs a new VM' : 'restart requested';
    const stop = stopWhenDue(o, now, p, actions, { type: 'restart', cause, reason });
    h.healthySince = null;
    return { state: 'stopping', wake: stop.wake, reason: stop.reason ?? `restarting: ${reason}` };
  }

  const startedAt = o.processStartedAt ?? now;
  const probe = o.probe;
  // Results from before this process started belong to another VM.
  const at = probe.at !== null && probe.at >= startedAt ? probe.at : null;
  const ok = at !== null && probe.ok;
  const lastOkAt = probe.lastOkAt !== null && probe.lastOkAt >= startedAt ? probe.lastOkAt : null;
  const lastNixOkAt = probe.lastNixOkAt !== null && probe.lastNixOkAt >= startedAt ? probe.lastNixOkAt : null;

  const interval = ok ? p.probeIntervalMs : p.bootProbeIntervalMs;
  // Only a Nix probe makes a VM healthy or brings it back; while healthy the cheap SSH check
  // fills the gaps between Nix probes.
  const nixDueAt = ok && lastNixOkAt !== null ? lastNixOkAt + p.nixProbeIntervalMs : null;
  const probeActions: Action[] = [];
  let probeWake = interval; // while a probe runs its result wakes the loop; this is a safety net
  if (!probe.inFlight) {
    const dueAt = at === null ? now : Math.min(at + interval, nixDueAt ?? Infinity);
    const check = nixDueAt === null || nixDueAt <= now ? 'nix' : 'ssh';
    if (dueAt <= now) probeActions.push({ type: 'probe', check });
    else probeWake = dueAt - now;
  }

  if (ok) {
    const healthySince = h.healthySince ?? at ?? now;
    h.healthySince = healthySince;
    resetIfStable(h, now, p, actions);
    actions.push(...probeActions);
    const stableWake = h.consecutiveFailures > 0 ? healthySince + p.stablePeriodMs - now : Infinity;
    return {
      state: 'running',
      wake: Math.min(probeWake, stableWake),
      reason: 'healthy: Nix answers over SSH',
    };
  }

  // The healthy stretch, if any, lasted until the last good probe.
  resetIfStable(h, lastOkAt ?? now, p, actions);
  h.healthySince = null;
  const booting = lastOkAt === null;
  // A booting VM is unhealthy only once the grace is over; a VM that was healthy, from its first failure.
  const unhealthySince = booting
    ? startedAt + p.bootGraceMs
    : Math.max(startedAt, probe.firstFailureAt ?? at ?? now);
  const detail = probe.error ? `: ${probe.error}` : '';
  if (now < unhealthySince) {
    actions.push(...probeActions);
    const reason = 'booting: waiting for Nix to answer over SSH';
    return { state: 'starting', wake: Math.min(probeWake, unhealthySince - now), reason };
  }
  const restartAt = unhealthySince + p.degradedRestartMs;
  if (now < restartAt) {
    actions.push(...probeActions);
    const what = booting
      ? `not healthy ${formatDuration(now - startedAt)} after the start`
      : 'the SSH probe is failing';
    return { state: 'degraded', wake: Math.min(probeWake, restartAt - now), reason: `${what}${detail}` };
  }

  // Unhealthy for too long: a failed start, like a crash.
  h.consecutiveFailures += 1;
  const why = booting
    ? `never became healthy in ${formatDuration(now - startedAt)}${detail}`
    : `unhealthy for ${formatDuration(now - unhealthySince)}${detail}`;
  if (h.consecutiveFailures >= p.maxAttempts) {
    h.failedReason = gaveUp(h.consecutiveFailures, why);
    actions.push({ type: 'stop', reason: why });
    return { state: 'failed', wake: stopRetry(p), reason: h.failedReason };
  }
  h.backoffUntil = now + backoffDelay(h.consecutiveFailures, p, random);
  actions.push({ type: 'restart', cause: 'health', reason: why });
  return { state: 'stopping', wake: stopRetry(p), reason: `restarting: ${why}` };
}

function startCause(h: StepMemory): StartCause {
  if (h.lastExit === null || h.state === 'stopped' || h.state === 'failed') return 'desired';
  if (h.lastExit.kind === 'crash') return 'crash';
  return h.lastExit.kind === 'reboot' ? 'reboot' : 'restart';
}

function startReason(cause: StartCause, last: string): string {
  switch (cause) {
    case 'desired':
      return 'starting the VM';
    case 'crash':
      return `starting the VM again after it ended (${last})`;
    case 'reboot':
      return 'starting the VM again: the guest rebooted';
    case 'restart':
      return 'starting the VM again after a controlled restart';
  }
}

function gaveUp(failures: number, last: string): string {
  return (
    `gave up after ${plural(failures, 'failed start')} in a row (last: ${last}); ` +
    'fix the cause, then start the builder again or change the config'
  );
}

/**
 * Asks for a stop (or a restart) unless the last one failed less than a retry interval ago:
 * a stop that fails is tried again later, never in a tight loop.
 */
function stopWhenDue(
  o: Observed,
  now: number,
  p: Policy,
  actions: Action[],
  action: Action,
): { wake: number; reason: string | null } {
  const failure = o.stopFailure;
  const retryAt = failure ? failure.at + stopRetry(p) : now;
  if (retryAt > now) {
    const reason = `the stop failed (${failure!.error}); trying again in ${formatDuration(retryAt - now)}`;
    return { wake: retryAt - now, reason };
  }
  actions.push(action);
  return { wake: stopRetry(p), reason: null };
}

function stopRetry(p: Policy): number {
  return Math.max(p.stopGraceMs, MIN_STOP_RETRY_MS);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** "850 ms", "2.5 s", "3 min 20 s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  const total = Math.round(ms / 1000);
  const min = Math.floor(total / 60);
  const s = total % 60;
  return s === 0 ? `${min} min` : `${min} min ${s} s`;
}
