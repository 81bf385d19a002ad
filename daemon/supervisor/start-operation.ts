// One start of the VM as an operation beside the loop: build the spec (which may build the guest
// image: minutes on a cold cache), clear stale files, spawn the hypervisor. The loop never awaits
// it; it reads `phase` and `cancelling` as observations and gets the outcome as one more.
// Cancelling aborts the spec's image build at once (the builder is killed and its partial files
// removed); a prepare that is already running finishes (the backend offers no way to interrupt
// it), but no hypervisor is spawned after a cancel.
import type { Backend, VmHandle, VmSpec } from '../backend.js';
import type { ObservedStart } from '../reconciler/types.js';

export type StartOutcome =
  | { kind: 'started'; handle: VmHandle }
  | { kind: 'failed'; error: unknown }
  | { kind: 'cancelled'; phase: ObservedStart['phase'] };

export interface StartWork {
  backend: Pick<Backend, 'prepare' | 'start'>;
  /** `signal` aborts when the start is cancelled; a builder may stop early on it. */
  buildSpec(signal: AbortSignal): Promise<VmSpec>;
}

export class StartOperation {
  phase: ObservedStart['phase'] = 'preparing';
  /** Settles once with the outcome; never rejects. */
  readonly done: Promise<StartOutcome>;
  private readonly abort = new AbortController();

  constructor(work: StartWork) {
    this.done = this.run(work).catch((error: unknown) => ({ kind: 'failed', error }) as const);
  }

  get cancelling(): boolean {
    return this.abort.signal.aborted;
  }

  cancel(): void {
    this.abort.abort();
  }

  observe(): ObservedStart {
    return { phase: this.phase, cancelling: this.cancelling };
  }

  private async run(work: StartWork): Promise<StartOutcome> {
    let spec: VmSpec;
    try {
      spec = await work.buildSpec(this.abort.signal);
    } catch (error) {
      // A builder that stopped early on the cancel throws; that is the cancel, not a failure.
      if (this.cancelling) return { kind: 'cancelled', phase: 'preparing' };
      throw error;
    }
    if (this.cancelling) return { kind: 'cancelled', phase: 'preparing' };
    await work.backend.prepare(spec);
    if (this.cancelling) return { kind: 'cancelled', phase: 'preparing' };
    this.phase = 'launching';
    // Once spawned, the VM is reported even if a cancel came meanwhile: the step stops it.
    return { kind: 'started', handle: await work.backend.start(spec) };
  }
}
