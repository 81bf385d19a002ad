// What the supervisor keeps on disk through its store, and how it fails: the desired state (queued,
// so the file ends with the newest one even when a slow write overlaps a quick one), the
// VM record (queued, so a late "clear" never overwrites the next VM's record) and the step memory
// (the newest value only, so the loop never waits for the disk). A read that fails is logged and
// gives the default; an unreadable step memory is replaced by a fresh one, never a crash loop.
import type { VmRecord } from '../backend.js';
import type { DesiredState } from '../controller.js';
import type { StepMemory } from '../reconciler/types.js';
import { LatestValueWriter } from './latest-value-writer.js';
import type { SupervisorLog, SupervisorStore } from './types.js';

export class SavedState {
  private desiredWrites: Promise<void> = Promise.resolve();
  private recordWrites: Promise<void> = Promise.resolve();
  private readonly memoryWriter: LatestValueWriter<StepMemory>;

  constructor(
    private readonly store: SupervisorStore,
    private readonly log: SupervisorLog,
  ) {
    this.memoryWriter = new LatestValueWriter(
      (m) => this.store.saveMemory(m),
      (err) =>
        this.log.error(
          { err },
          'could not save the step memory; a daemon restart may forget a backoff or failed',
        ),
    );
  }

  async loadDesired(): Promise<DesiredState> {
    return (await attempt(this.log, 'load the desired state', () => this.store.loadDesired())) ?? 'running';
  }

  /**
   * Writes after every write asked for before it. Throws with a message naming the state and what
   * went wrong; the caller reports it.
   */
  saveDesired(d: DesiredState): Promise<void> {
    const write = this.desiredWrites.then(async () => {
      try {
        await this.store.saveDesired(d);
      } catch (err) {
        throw new Error(`could not save the desired state "${d}": ${messageOf(err)}`);
      }
    });
    this.desiredWrites = write.catch(() => undefined);
    return write;
  }

  loadRecord(): Promise<VmRecord | null> {
    return attempt(this.log, 'load the VM record', () => this.store.loadRecord());
  }

  saveRecord(r: VmRecord | null): Promise<void> {
    const write = this.recordWrites.then(() =>
      attempt(this.log, r ? 'save the VM record' : 'clear the VM record', () => this.store.saveRecord(r)),
    );
    this.recordWrites = write.then(() => undefined);
    return this.recordWrites;
  }

  /** The saved memory; `fresh` (saved at once over the bad file) when there is none or it is unreadable. */
  async loadMemory(fresh: StepMemory): Promise<{ memory: StepMemory; resumed: boolean }> {
    try {
      const saved = await this.store.loadMemory();
      return saved ? { memory: saved, resumed: true } : { memory: fresh, resumed: false };
    } catch (err) {
      const message =
        `the saved step memory is unreadable (${messageOf(err)}); starting from a fresh one: ` +
        'failures in a row, any backoff and a failed state are forgotten';
      this.log.error({ err }, message);
      this.memoryWriter.save(fresh);
      return { memory: fresh, resumed: false };
    }
  }

  saveMemory(m: StepMemory): void {
    this.memoryWriter.save(m);
  }

  /** Resolves once every write handed over so far has finished. */
  async flushed(): Promise<void> {
    await this.memoryWriter.flushed();
    await this.recordWrites;
  }
}

/** Runs `fn`, logging a failure as "could not <what>" and returning null instead. */
export async function attempt<T>(log: SupervisorLog, what: string, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    log.warn({ err }, `could not ${what}`);
    return null;
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
