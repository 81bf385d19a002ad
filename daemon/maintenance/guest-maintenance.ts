// Housekeeping inside a healthy guest, from the host: at the Nix probe's cadence (every 5 min by
// default) one SSH command reads the store's free space and the guest clock; the decisions
// (store-space.ts, clock-skew.ts) say whether to collect garbage or set the clock, and each action
// taken is reported as a `repair` event through the supervisor (which also logs it). A pass also
// runs soon after the host wakes from sleep, when the guest's clock is the one thing sure to be off:
// a light timer notices the wall clock jump past its own interval.
import type { EventEmitter } from 'node:events';
import type { BuilderState, StateEvent } from '../controller.js';
import type { GuestCommandResult } from '../probe/guest-ssh.js';
import { systemClock, type Clock } from '../supervisor/types.js';
import {
  decideClockCorrection,
  formatSkew,
  measureSkew,
  parseGuestEpoch,
  setClockCommand,
  type SkewMeasurement,
} from './clock-skew.js';
import {
  decideGc,
  formatMiB,
  gcCommand,
  parseDfOutput,
  parseGcSummary,
  type GcThresholds,
  type StoreSpace,
} from './store-space.js';

/** Maintenance runs at least this many probe intervals apart. */
export const PROBE_INTERVALS_PER_PASS = 4;
/** How often the wall clock is compared with the timer's own interval, to notice a host sleep. */
export const SLEEP_WATCH_MS = 15_000;
/** The guest clock is set when it is certainly further than this from the host's. */
export const MAX_CLOCK_SKEW_MS = 3000;
/** A collection in a big store takes a while; it runs with this deadline. */
export const GC_DEADLINE_MS = 10 * 60_000;
/** On shutdown, a pass in progress gets this long to finish. */
export const STOP_WAIT_MS = 2000;
/** After the builder becomes healthy, the first pass runs this soon (a clock stale since boot). */
export const FIRST_PASS_DELAY_MS = 1000;

/**
 * A pass every Nix probe interval: an SSH session costs the emulated guest far more CPU than the
 * banner checks between (every minute, it was the largest part of an idle builder's cost).
 */
export function maintenanceIntervalMs(probe: { intervalMs: number; nixIntervalMs: number }): number {
  return Math.max(PROBE_INTERVALS_PER_PASS * probe.intervalMs, probe.nixIntervalMs);
}

/**
 * Whether the wall clock moved further than a timer's interval allows: the host slept (timers
 * stand still in sleep, the wall clock does not) or its clock was set. Either way the guest's
 * clock is now off.
 */
export function wallClockJumped(elapsedWallMs: number, intervalMs: number, maxSkewMs: number): boolean {
  return elapsedWallMs > intervalMs + maxSkewMs || elapsedWallMs < -maxSkewMs;
}

const DATE_MARK = '@@linuxkit-nix date';
/** One round trip for both readings; the date comes last, closest to the output's arrival. */
export const CHECK_COMMAND = `df -Pk /nix/store; echo '${DATE_MARK}'; date +%s`;

/** The part of the supervisor maintenance needs. */
export interface MaintenanceHost {
  status(): { state: BuilderState; healthy: boolean; vm: { pid: number | null } };
  readonly events: EventEmitter;
  reportEvent(type: 'repair', message: string, details?: Record<string, unknown>): void;
  reportError(source: string, message: string): void;
  clearError(source: string): void;
}

export interface MaintenanceSettings {
  intervalMs: number;
  gc: GcThresholds;
  maxClockSkewMs: number;
  /** Deadline of the check and clock commands. */
  commandTimeoutMs: number;
}

export interface MaintenanceLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export interface GuestMaintenanceOptions {
  host: MaintenanceHost;
  /** Runs a command in the guest (runGuestCommand with the pinned key, in the daemon). */
  run(command: string, opts: { deadlineMs: number }): Promise<GuestCommandResult>;
  /** Read before every pass, so config edits (gc.*, probe.intervalMs) apply live. */
  settings(): MaintenanceSettings;
  log: MaintenanceLog;
  clock?: Clock;
}

export interface CheckReading {
  space: StoreSpace;
  skew: SkewMeasurement;
  latencyMs: number;
}

export interface PassReport {
  skipped: boolean;
  reading?: CheckReading;
  clock?: { skewBeforeMs: number; skewAfterMs: number };
  gc?: { freeBeforeMiB: number; freeAfterMiB: number; summary: string };
}

/** Splits the check command's output into the df part and the date part. */
export function parseCheckOutput(stdout: string): { df: string; date: string } {
  const at = stdout.indexOf(DATE_MARK);
  if (at < 0)
    throw new Error(`the maintenance check printed no date marker: ${JSON.stringify(stdout.slice(0, 200))}`);
  return { df: stdout.slice(0, at), date: stdout.slice(at + DATE_MARK.length) };
}

/** status.errors sources: a store that stays full or a failed collection; a clock that could not be set. */
export const STORE_ERROR_SOURCE = 'guest-store';
export const CLOCK_ERROR_SOURCE = 'guest-clock';

export class GuestMaintenance {
  private readonly clock: Clock;
  private timer: unknown = null;
  private sleepWatch: unknown = null;
  private running: Promise<PassReport> | null = null;
  private stopped = true;
  /** Free KiB left by a collection that could not reach gc.minFreeMiB: no use collecting again until it drops. */
  private futileGcAvailableKiB: number | null = null;
  // Soon after the builder becomes healthy (its clock may be stale since it booted), and after
  // a config edit (gc.minFreeMiB may just have been raised), rather than a whole interval later.
  private readonly onEvent = (e: StateEvent): void => {
    if ((e.type === 'state' && e.state === 'running') || e.type === 'config')
      this.schedule(FIRST_PASS_DELAY_MS);
  };

  constructor(private readonly opts: GuestMaintenanceOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.opts.host.events.on('event', this.onEvent);
    this.schedule(this.opts.settings().intervalMs);
    this.watchForSleep(this.clock.now());
  }

  private watchForSleep(lastWall: number): void {
    this.sleepWatch = this.clock.setTimeout(() => {
      this.sleepWatch = null;
      if (this.stopped) return;
      const now = this.clock.now();
      const elapsed = now - lastWall;
      if (wallClockJumped(elapsed, SLEEP_WATCH_MS, this.opts.settings().maxClockSkewMs)) {
        this.opts.log.info(
          { elapsedWallMs: elapsed, expectedMs: SLEEP_WATCH_MS },
          `the host's clock jumped ${Math.round((elapsed - SLEEP_WATCH_MS) / 1000)} s (the host slept, or its clock was set): checking the guest's clock`,
        );
        if (this.running === null) this.schedule(FIRST_PASS_DELAY_MS);
      }
      this.watchForSleep(now);
    }, SLEEP_WATCH_MS);
  }

  /**
   * Stops the schedule and waits up to `waitMs` for a pass in progress: a check takes a second,
   * a collection may take minutes and is left to finish in the guest on its own.
   */
  async stop(waitMs = STOP_WAIT_MS): Promise<void> {
    this.stopped = true;
    this.opts.host.events.off('event', this.onEvent);
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (this.sleepWatch !== null) this.clock.clearTimeout(this.sleepWatch);
    this.sleepWatch = null;
    const running = this.running;
    if (!running) return;
    let timer: unknown = null;
    await Promise.race([
      running.catch(() => undefined),
      new Promise<void>((resolve) => (timer = this.clock.setTimeout(resolve, waitMs))),
    ]);
    this.clock.clearTimeout(timer);
  }

  /** Runs one pass now (or joins the one running); skipped unless the builder is healthy. */
  runOnce(): Promise<PassReport> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        void this.runOnce()
          .catch((err: Error) => this.opts.log.warn({ err }, `guest maintenance failed: ${err.message}`))
          .finally(() => this.schedule(this.opts.settings().intervalMs));
      },
      Math.max(0, ms),
    );
  }

  private healthy(): boolean {
    const s = this.opts.host.status();
    return s.state === 'running' && s.healthy;
  }

  private async pass(): Promise<PassReport> {
    if (!this.healthy()) return { skipped: true };
    const settings = this.opts.settings();
    const reading = await this.check(settings.commandTimeoutMs);
    const report: PassReport = { skipped: false, reading };
    this.opts.log.debug?.(
      { freeMiB: reading.space.availableKiB / 1024, skewMs: reading.skew.skewMs },
      'guest maintenance check',
    );

    const clock = decideClockCorrection(reading.skew, settings.maxClockSkewMs);
    if (!clock.correct) this.opts.host.clearError(CLOCK_ERROR_SOURCE);
    else if (this.healthy()) report.clock = await this.setClock(reading, settings, clock.reason);

    const gc = decideGc(reading.space, settings.gc);
    if (!gc.collect) {
      this.futileGcAvailableKiB = null;
      this.opts.host.clearError(STORE_ERROR_SOURCE);
    } else if (
      this.futileGcAvailableKiB !== null &&
      reading.space.availableKiB >= this.futileGcAvailableKiB - 1024
    ) {
      this.opts.log.debug?.(
        { freeMiB: reading.space.availableKiB / 1024 },
        'guest store still short; nothing more to collect',
      );
    } else if (this.healthy()) {
      report.gc = await this.collect(reading.space, gc, settings);
    }
    return report;
  }

  private async check(deadlineMs: number): Promise<CheckReading> {
    const before = this.clock.now();
    const res = await this.opts.run(CHECK_COMMAND, { deadlineMs });
    const after = this.clock.now();
    const parts = parseCheckOutput(res.stdout);
    return {
      space: parseDfOutput(parts.df),
      skew: measureSkew({
        guestEpochS: parseGuestEpoch(parts.date),
        hostBeforeMs: before,
        hostAfterMs: after,
      }),
      latencyMs: after - before,
    };
  }

  private async setClock(
    reading: CheckReading,
    settings: MaintenanceSettings,
    why: string,
  ): Promise<PassReport['clock']> {
    const sent = this.clock.now();
    const { epochS, command } = setClockCommand(sent, reading.latencyMs);
    const res = await this.opts.run(command, { deadlineMs: settings.commandTimeoutMs });
    const arrived = this.clock.now();
    if (res.code !== 0) {
      const message = `could not set the guest clock (${why}): date -s exited ${res.code}: ${(res.stderr || res.stdout).trim().slice(0, 200)}`;
      this.opts.host.reportError(CLOCK_ERROR_SOURCE, message);
      throw new Error(message);
    }
    this.opts.host.clearError(CLOCK_ERROR_SOURCE);
    const after = measureSkew({
      guestEpochS: parseGuestEpoch(res.stdout),
      hostBeforeMs: sent,
      hostAfterMs: arrived,
    });
    const result = { skewBeforeMs: reading.skew.skewMs, skewAfterMs: after.skewMs };
    this.opts.host.reportEvent(
      'repair',
      `set the guest clock to the host's: ${why}; now within ${formatSkew(Math.max(Math.abs(after.minMs), Math.abs(after.maxMs)))}`,
      { action: 'clock', ...result, epochS },
    );
    return result;
  }

  private async collect(
    space: StoreSpace,
    decision: Extract<ReturnType<typeof decideGc>, { collect: true }>,
    settings: MaintenanceSettings,
  ): Promise<PassReport['gc']> {
    const command = gcCommand(decision);
    this.opts.log.info(
      { freeMiB: space.availableKiB / 1024, command },
      `collecting garbage in the guest: ${decision.reason}`,
    );
    const res = await this.opts.run(command, { deadlineMs: GC_DEADLINE_MS });
    if (res.code !== 0) {
      const message = `garbage collection in the guest failed (${decision.reason}): ${command} exited ${res.code}: ${(res.stderr || res.stdout).trim().slice(-300)}`;
      this.opts.host.reportError(STORE_ERROR_SOURCE, message);
      throw new Error(message);
    }
    const summary = parseGcSummary(`${res.stdout}\n${res.stderr}`);
    const afterRead = await this.check(settings.commandTimeoutMs);
    const freeBeforeMiB = space.availableKiB / 1024;
    const freeAfterMiB = afterRead.space.availableKiB / 1024;
    const what = summary
      ? `${summary.paths} store paths deleted, ${summary.freed} freed`
      : 'nothing to delete';
    const result = { freeBeforeMiB, freeAfterMiB, summary: what };
    this.opts.host.reportEvent(
      'repair',
      `collected garbage in the guest store: ${decision.reason}; ${what}; ${formatMiB(freeAfterMiB)} free now`,
      { action: 'gc', ...result },
    );
    if (decideGc(afterRead.space, settings.gc).collect) {
      this.futileGcAvailableKiB = afterRead.space.availableKiB;
      this.opts.host.reportError(
        STORE_ERROR_SOURCE,
        `the guest store has only ${formatMiB(freeAfterMiB)} free after collecting garbage (gc.minFreeMiB ${settings.gc.minFreeMiB}): ` +
          'live paths take the rest; give the VM more memory or a disk (diskGiB)',
      );
    } else {
      this.futileGcAvailableKiB = null;
      this.opts.host.clearError(STORE_ERROR_SOURCE);
    }
    return result;
  }
}
