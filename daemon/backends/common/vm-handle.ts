// What the VM handles of every backend share: the VM record behind the handle, an `exited` that
// settles once and never rejects, and a stop that runs once however often it is asked for.
import type { StopOptions, VmExit, VmHandle, VmRecord } from '../../backend.js';

export abstract class BackendVm implements VmHandle {
  /** The exit, once `exited` has settled. */
  exit: VmExit | null = null;
  /** Set by detach(): this daemon no longer owns the VM's processes or files. */
  detached = false;
  private stopping: Promise<VmExit> | null = null;
  private watched!: Promise<VmExit>;

  constructor(readonly record: VmRecord) {}

  get exited(): Promise<VmExit> {
    return this.watched;
  }

  get pid(): number {
    return this.record.pid;
  }

  get startedAt(): string {
    return this.record.startedAt;
  }

  /**
   * Makes `exit` the handle's `exited`. A subclass calls it last in its constructor, once its
   * own fields are set: the watcher may read them at once.
   */
  protected watchExit(exit: Promise<VmExit>): void {
    this.watched = exit
      // `exited` never rejects: a failure while observing the exit still means the VM is gone.
      .catch(
        (err: Error): VmExit => ({
          code: null,
          signal: null,
          reason: `exited (an error while watching it: ${err.message})`,
          at: new Date().toISOString(),
        }),
      )
      .then((exit) => (this.exit = exit));
  }

  /** Backend.stop(): checks `graceMs`, then runs `stopInSteps` once; a later call joins it. */
  stopOnce(opts: StopOptions, stopInSteps: (graceMs: number) => Promise<VmExit>): Promise<VmExit> {
    if (!Number.isFinite(opts.graceMs) || opts.graceMs < 0) {
      return Promise.reject(new Error(`graceMs must be a number >= 0, got ${opts.graceMs}`));
    }
    if (this.exit) return Promise.resolve(this.exit);
    this.stopping ??= stopInSteps(opts.graceMs);
    return this.stopping;
  }
}
