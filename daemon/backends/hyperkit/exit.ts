// How a hyperkit VM ended, in plain words, from what was observed: hyperkit's exit status,
// whether vpnkit went first, and (for an adopted VM, whose status is unknowable) the guest's last
// console words. Pure, so a table test can pin it. Same style as the QEMU backend's exit.ts.
import type { VmExit } from '../../backend.js';
import { describeEnd, type ProcessEnd } from '../common/spawn.js';
import { lastLine } from '../common/stderr-tail.js';

export interface HyperkitExitObservation extends ProcessEnd {
  /** vpnkit ended before hyperkit did: the network went away and took the VM with it. */
  vpnkitFirst?: ProcessEnd | null;
  /** The VM was adopted from an earlier daemon: its exit status cannot be known. */
  adopted?: boolean;
  /** The last lines hyperkit wrote to its log during this run. */
  stderrTail?: string;
  /** The guest's last console lines (used for adopted VMs). */
  consoleTail?: string[];
}

export function describeHyperkitExit(o: HyperkitExitObservation, at: string): VmExit {
  const base = { code: o.code, signal: o.signal, at };
  if (o.vpnkitFirst) {
    // Whatever hyperkit's own status, the cause was the network: a crash, never a reboot.
    return {
      ...base,
      reason: `vpnkit ${describeEnd(o.vpnkitFirst)}; the VM went down with it (hyperkit ${describeEnd(o)})`,
    };
  }
  const last = lastLine(o.stderrTail);
  if (o.signal !== null) {
    // SIGABRT is hyperkit failing on its own (e.g. an instruction it cannot emulate): say why.
    const why = o.signal !== 'SIGKILL' && o.signal !== 'SIGTERM' && last !== '' ? `: ${last}` : '';
    return { ...base, reason: `killed by ${o.signal}${why}` };
  }
  if (o.adopted || o.code === null) return describeAdopted(base, o.consoleTail ?? []);
  switch (o.code) {
    case 0:
      return { ...base, reason: 'guest powered off' };
    case 2:
      // hyperkit cannot reset a VM: it exits, and the guest is started again at once.
      return { ...base, reason: 'guest rebooted', reboot: true };
    case 3:
      return { ...base, reason: 'guest triple fault (the guest CPU hit a fault it could not handle)' };
    case 100:
      return { ...base, reason: `hyperkit failed (exit code 100)${last ? `: ${last}` : ''}` };
    default:
      return { ...base, reason: `exited with code ${o.code}${last ? `: ${last}` : ''}` };
  }
}

// Linux prints one of these as its very last console line.
const POWER_DOWN = /reboot: (Power down|System halted)/;
const RESTART = /reboot: Restarting system/;

function describeAdopted(base: Omit<VmExit, 'reason'>, consoleTail: string[]): VmExit {
  const lastWords = [...consoleTail].reverse().find((l) => POWER_DOWN.test(l) || RESTART.test(l));
  if (lastWords && RESTART.test(lastWords)) {
    return { ...base, reason: 'guest rebooted (adopted VM; seen on its console)', reboot: true };
  }
  if (lastWords) return { ...base, reason: 'guest powered off (adopted VM; seen on its console)' };
  return { ...base, reason: 'exited (adopted VM, exit code unknown)' };
}
