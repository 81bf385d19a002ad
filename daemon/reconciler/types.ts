// The vocabulary of one reconcile step: what the loop observed (the VM, the probe, the operations
// in flight and their results), what it remembers between steps (saved across daemon restarts),
// and what the step asks the workers to do. Times are epoch milliseconds from the loop's clock.
import type { BuilderState, DesiredState } from '../controller.js';

/** Every knob the step reads; the supervisor reads it afresh each step so edits apply live. */
export interface Policy {
  /** Delay before the first restart after a failed start; doubles (×multiplier) per failure. */
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Fraction of the delay added or removed at random (0.2 = ±20 %). */
  jitter: number;
  /** Consecutive failed starts before the state becomes `failed`. */
  maxAttempts: number;
  /** Healthy this long resets the failure count. */
  stablePeriodMs: number;
  /** Failing probes right after a start are expected this long. */
  bootGraceMs: number;
  /** Probe failing this long (after the grace) while the process is up restarts the VM. */
  degradedRestartMs: number;
  /** Time between probes while healthy: most are the cheap SSH check, a Nix probe when due. */
  probeIntervalMs: number;
  /** Time between full probes (Nix over SSH) while healthy. */
  nixProbeIntervalMs: number;
  /** Time between probes while not (yet) healthy: a booting VM is noticed quickly. */
  bootProbeIntervalMs: number;
  /** How long the guest gets to power off through ACPI before harder means. */
  stopGraceMs: number;
}

/** The config file's settings (daemon/config/schema.ts), structurally, to build a Policy from. */
export interface PolicySettings {
  restart: Pick<
    Policy,
    'initialDelayMs' | 'maxDelayMs' | 'multiplier' | 'jitter' | 'maxAttempts' | 'stablePeriodMs'
  >;
  probe: { intervalMs: number; nixIntervalMs: number; bootGraceMs: number; degradedRestartMs: number };
  stopGraceMs: number;
}

export function policyFromSettings(s: PolicySettings): Policy {
  return {
    ...s.restart,
    bootGraceMs: s.probe.bootGraceMs,
    degradedRestartMs: s.probe.degradedRestartMs,
    probeIntervalMs: s.probe.intervalMs,
    nixProbeIntervalMs: s.probe.nixIntervalMs,
    // A first build may be waiting on the boot: look every second, never slower than the interval.
    bootProbeIntervalMs: Math.min(1000, s.probe.intervalMs),
    stopGraceMs: s.stopGraceMs,
  };
}

/** How the VM process ended, as the loop saw it; handed to exactly one step. */
export interface ObservedExit {
  at: number;
  code: number | null;
  signal: string | null;
  reason: string;
  /** The guest asked for a reboot the hypervisor cannot do itself: restart at once, not a crash. */
  reboot?: boolean;
  /** The daemon asked for this exit (a stop or a controlled restart). */
  requested: boolean;
  /** The process had answered a probe at some point: a reboot before that is a boot failure. */
  everHealthy: boolean;
}

/** Probe results for the current VM process only; the loop resets them at each start. */
export interface ObservedProbe {
  /** Result of the latest probe (false when there is none yet). */
  ok: boolean;
  /** When the latest probe finished; null before the first. */
  at: number | null;
  /** Start of the current run of failing probes; null while ok. */
  firstFailureAt: number | null;
  /** The latest successful probe; null if this process was never healthy. */
  lastOkAt: number | null;
  /** The latest successful Nix probe (the full check); null if none for this process. */
  lastNixOkAt: number | null;
  /** The latest failure's message, for the reasons the step gives. */
  error: string | null;
  /** A probe is running: its result will wake the loop. */
  inFlight: boolean;
}

/** A start operation in flight: building the spec (the guest image), preparing, launching. */
export interface ObservedStart {
  /** `preparing`: image and stale files, cancellable; `launching`: the hypervisor is being spawned. */
  phase: 'preparing' | 'launching';
  /** A cancel was asked for; the operation ends without a VM (or with one the step then stops). */
  cancelling: boolean;
}

export interface Observed {
  /** `stopping`: a stop operation is in flight for the current VM and it has not exited yet. */
  process: 'none' | 'up' | 'stopping';
  processStartedAt: number | null;
  /** An exit not yet accounted for by a step; the loop passes each exit once. A start that failed is one. */
  exit: ObservedExit | null;
  probe: ObservedProbe;
  /** The start operation in flight, if any; its result (a VM, or a failed start) ends it. */
  start: ObservedStart | null;
  /** The last stop operation on the current VM failed: when, and why; cleared by the next stop. */
  stopFailure: { at: number; error: string } | null;
  /** The running VM predates a config change that needs a new VM. */
  configNeedsRestart: boolean;
  /** The running VM predates a restart request from the API. */
  restartRequested: boolean;
  /** One-shot: an API start since the last step (clears `failed` and any backoff wait). */
  explicitStart: boolean;
  /** One-shot: the config changed since the last step. */
  configChanged: { needsRestart: boolean } | null;
}

export type ExitKind = 'crash' | 'reboot' | 'requested';

/**
 * What the step remembers between steps, the state it last decided included. Saved after every
 * step that changes it and read back at daemon start, so `failed` and a backoff survive a restart.
 */
export interface StepMemory {
  state: BuilderState;
  /** Failed starts (never healthy, or crashed within the stable period) since the last stable run. */
  consecutiveFailures: number;
  lastExit: (Omit<ObservedExit, 'requested' | 'everHealthy'> & { kind: ExitKind }) | null;
  failedReason: string | null;
  /** No start before this time. */
  backoffUntil: number | null;
  /** Start of the current healthy stretch of the current process. */
  healthySince: number | null;
  lastStateChangeAt: number;
}

export function freshStepMemory(now: number): StepMemory {
  return {
    state: 'stopped',
    consecutiveFailures: 0,
    lastExit: null,
    failedReason: null,
    backoffUntil: null,
    healthySince: null,
    lastStateChangeAt: now,
  };
}

/**
 * The memory a new daemon process starts from, given what an earlier one saved. Failures in a row,
 * a backoff deadline, `failed` and the last exit carry over; a state that described the earlier
 * process's VM (starting, running, degraded, stopping) does not: this process has no VM until it
 * adopts one or starts one, so it begins `stopped` and lets its first step decide.
 */
export function resumeStepMemory(saved: StepMemory): StepMemory {
  if (saved.state === 'failed' || saved.state === 'backoff' || saved.state === 'stopped') {
    return { ...saved, healthySince: null };
  }
  return { ...saved, state: 'stopped', healthySince: null };
}

/**
 * What a probe checks. `nix`: Nix answers over SSH with the pinned host key (what a build needs;
 * it waits for the SSH server at a fine interval first, so a booting VM is ready as soon as it
 * answers). `ssh`: the SSH server sends its banner, the cheap check between Nix probes.
 */
export type ProbeCheck = 'nix' | 'ssh';

/** Why a start happens: the supervisor counts `crash` starts as restarts. */
export type StartCause = 'desired' | 'crash' | 'reboot' | 'restart';
/** Why a running VM is replaced: `health` counts as a restart and as a failed start. */
export type RestartCause = 'config' | 'requested' | 'health';

export type Action =
  | { type: 'start'; cause: StartCause }
  | { type: 'stop'; reason: string }
  /** Abandon the start in flight: no VM is launched if it has not been yet. */
  | { type: 'cancel-start'; reason: string }
  | { type: 'restart'; cause: RestartCause; reason: string }
  | { type: 'probe'; check: ProbeCheck }
  /** The VM was healthy for the stable period: the failure count went back to zero. */
  | { type: 'reset-backoff'; failures: number };

/**
 * What the step is asked for: the API's desired state, or `asleep` in on-demand mode while no
 * connection wants the builder (off like `stopped`, but a failed start keeps counting, so
 * connections that keep coming cannot turn a broken builder into a boot loop).
 */
export type StepDesired = DesiredState | 'asleep';

export interface StepInput {
  desired: StepDesired;
  observed: Observed;
  memory: StepMemory;
  now: number;
  policy: Policy;
  /** In [0, 1), drawn by the caller so the step stays pure. */
  random: number;
}

export interface StepResult {
  state: BuilderState;
  actions: Action[];
  /** When to look again even if nothing happens; null only in `stopped` and `failed`. */
  wakeAfterMs: number | null;
  memory: StepMemory;
  /** Plain words for why the builder is in `state`. */
  reason: string;
}
