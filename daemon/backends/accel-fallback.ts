// `accel: auto` must not keep a hardware accelerator that cannot run a guest. On some machines
// /dev/kvm exists and is writable, yet a KVM guest fails (QEMU: "KVM internal error") or hangs
// with no console output at all. The signs are pure functions of what the daemon sees (the exit
// reason, the console's size a while after the start); AccelFallback watches the supervisor's
// events for them and hands the failed accelerator to the daemon, which chooses again (tcg) and
// says why in status and events. An accelerator named in the config is never swapped.
import type { Accelerator } from '../backend.js';
import type { StateEvent } from '../controller.js';

/** QEMU's own words for a hardware accelerator that cannot run the guest. */
const ACCEL_FAILURE =
  /KVM internal error[^\n]*|failed to initialize (?:kvm|hvf)[^\n]*|Could not access KVM kernel module[^\n]*/i;

/** A console this quiet this long after the start under kvm/hvf: the guest hangs. */
export const SILENT_BOOT_MS = 30_000;

/** Why the exit shows that `accel` cannot run the guest, or null. */
export function acceleratorFailure(accel: Accelerator, exitReason: string): string | null {
  if (accel === 'tcg') return null;
  const m = ACCEL_FAILURE.exec(exitReason);
  return m ? `QEMU: ${m[0].trim()}` : null;
}

/** Why a boot under `accel` with `consoleBytes` of output `sinceStartMs` after its start hangs, or null. */
export function silentBoot(accel: Accelerator, consoleBytes: number, sinceStartMs: number): string | null {
  if (accel === 'tcg' || consoleBytes > 0 || sinceStartMs < SILENT_BOOT_MS) return null;
  return `no console output ${Math.round(sinceStartMs / 1000)} s after the start under ${accel}`;
}

export interface AccelFallbackOptions {
  /** The accelerator in use, and whether the config left the choice to auto. */
  current(): { accel: Accelerator; auto: boolean };
  /** The console log size of the VM now running, or null without one. */
  consoleBytes(): Promise<number | null>;
  /** The accelerator cannot run the guest: choose again, and replace a hanging VM. */
  failed(accel: Accelerator, reason: string, hanging: boolean): void;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (timer: unknown) => void;
}

export class AccelFallback {
  private timer: unknown = null;

  constructor(private readonly o: AccelFallbackOptions) {}

  /** Feed every supervisor event here. */
  observe(e: StateEvent): void {
    const { accel, auto } = this.o.current();
    if (!auto || accel === 'tcg') return;
    if (e.type === 'exit') {
      this.cancel();
      const reason = acceleratorFailure(accel, e.message);
      if (reason) this.o.failed(accel, reason, false);
    } else if (e.type === 'state' && e.state === 'starting' && e.from !== 'starting') {
      this.cancel();
      const setT = this.o.setTimeout ?? setTimeout;
      this.timer = setT(() => void this.checkSilence(accel), SILENT_BOOT_MS);
    }
  }

  cancel(): void {
    if (this.timer !== null) (this.o.clearTimeout ?? ((t) => clearTimeout(t as NodeJS.Timeout)))(this.timer);
    this.timer = null;
  }

  private async checkSilence(accel: Accelerator): Promise<void> {
    this.timer = null;
    const bytes = await this.o.consoleBytes();
    if (bytes === null || this.o.current().accel !== accel) return;
    const reason = silentBoot(accel, bytes, SILENT_BOOT_MS);
    if (reason) this.o.failed(accel, reason, true);
  }
}
