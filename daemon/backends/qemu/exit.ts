// How a QEMU process ended, in plain words, from what was observed: the child's exit
// status and the reason in QEMU's last SHUTDOWN event. Pure, so a table test can pin it.
import type { VmExit } from '../../backend.js';
import { explainQemuFailure } from './known-failures.js';
import { lastLine } from '../common/stderr-tail.js';

export interface ExitObservation {
  /** Exit code; null when killed by a signal or unknown (an adopted VM). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** `data.reason` of the last QMP SHUTDOWN event, if one arrived. */
  shutdownReason?: string;
  /** A GUEST_PANICKED event arrived (the guest has a pvpanic driver). */
  panicked?: boolean;
  /** The VM was adopted from an earlier daemon: its exit status cannot be known. */
  adopted?: boolean;
  /** The last lines QEMU wrote to stderr during this run. */
  stderrTail?: string;
}

const HOST_REASONS = new Set(['host-qmp-quit', 'host-signal', 'host-ui', 'host-qmp-system-reset']);

export function describeVmExit(o: ExitObservation, at: string): VmExit {
  const base = { code: o.code, signal: o.signal, at };
  // A signal QEMU does not handle (SIGKILL) ends it whatever the guest was doing.
  if (o.signal !== null) {
    const known = explainQemuFailure(o.stderrTail);
    return { ...base, reason: known ? `killed by ${o.signal}: ${known}` : `killed by ${o.signal}` };
  }
  if (o.panicked || o.shutdownReason === 'guest-panic') return { ...base, reason: 'guest kernel panicked' };
  switch (o.shutdownReason) {
    case undefined:
      break;
    case 'guest-shutdown':
      return { ...base, reason: 'guest powered off' };
    case 'guest-reset':
      return { ...base, reason: 'guest rebooted', reboot: true };
    default:
      if (HOST_REASONS.has(o.shutdownReason)) return { ...base, reason: 'stopped by the host' };
      return { ...base, reason: `shut down (${o.shutdownReason})` };
  }
  if (o.adopted || o.code === null) return { ...base, reason: 'exited (adopted VM, exit code unknown)' };
  const last = lastLine(o.stderrTail);
  if (o.code !== 0 && last !== '') return { ...base, reason: `exited with code ${o.code}: ${last}` };
  return { ...base, reason: `exited with code ${o.code}` };
}
