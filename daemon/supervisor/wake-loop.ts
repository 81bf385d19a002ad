// Runs one step at a time. Wake-ups that arrive while a step runs fold into one more step after
// it, so a burst of events costs one extra step and a missed event only costs latency.
import type { Clock } from './types.js';

export class WakeLoop {
  private running = false;
  private pending = false;
  private closed = false;
  private timer: unknown = null;
  /** Callers waiting for the next step's decision, and those the running step will answer. */
  private waiting: Array<() => void> = [];
  private answering: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  /** `step` must not throw; it calls decided() once its decision is visible. */
  constructor(
    private readonly clock: Clock,
    private readonly step: () => Promise<void>,
  ) {}

  /** Asks for a step; resolves once that step has decided (not when its actions finish). */
  wake(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.pending = true;
      if (!this.running) void this.run();
    });
  }

  /** Called by the step: everyone who asked before it began may go on. */
  decided(): void {
    for (const resolve of this.answering.splice(0)) resolve();
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
      for (const resolve of this.waiting.splice(0)) resolve();
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
