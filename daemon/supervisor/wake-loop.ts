// Runs one step at a time. Wake-ups that arrive while a step runs fold into one more step after
// it, so a burst of events costs one extra step and a missed event only costs latency. A caller
// of wake() gets what the step reported when it decided (the supervisor's status then), so an
// answer is never a later step's, however fast the workers report back.
import type { Clock } from './types.js';

export class WakeLoop<T = void> {
  private running = false;
  private pending = false;
  private closed = false;
  private timer: unknown = null;
  /** Callers waiting for the next step's decision, and those the running step will answer. */
  private waiting: Array<(decision: T | undefined) => void> = [];
  private answering: Array<(decision: T | undefined) => void> = [];
  private idleWaiters: Array<() => void> = [];

  /** `step` must not throw; it calls decided() once its decision is visible. */
  constructor(
    private readonly clock: Clock,
    private readonly step: () => Promise<void>,
  ) {}

  /**
   * Asks for a step; resolves once that step has decided (not when its actions finish), with
   * what it passed to decided() (undefined if it passed nothing or the loop is closed).
   */
  wake(): Promise<T | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.pending = true;
      if (!this.running) void this.run();
    });
  }

  /** Called by the step: everyone who asked before it began may go on, with `report()` if given. */
  decided(report?: () => T): void {
    if (this.answering.length === 0) return;
    const decision = report?.();
    for (const resolve of this.answering.splice(0)) resolve(decision);
  }

  /** One timed wake-up, replacing the previous one; null cancels it. */
  wakeAfter(ms: number | null): void {
    this.cancelTimer();
    if (ms === null || this.closed) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.wake();
    }, ms);
  }

  /** No more steps: cancels the timer and resolves once the running step (and its actions) is done. */
  close(): Promise<void> {
    this.closed = true;
    this.cancelTimer();
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.pending && !this.closed) {
        this.pending = false;
        this.answering = this.waiting.splice(0);
        try {
          await this.step();
        } catch {
          // The step handles its own errors; this only keeps the loop alive if it did not.
        } finally {
          this.decided();
        }
      }
    } finally {
      this.running = false;
      for (const resolve of this.waiting.splice(0)) resolve(undefined);
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
