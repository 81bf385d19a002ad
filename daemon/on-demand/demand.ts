// On-demand mode's one decision, pure: given the wake-up in effect and the connections the
// daemon's SSH endpoint holds or forwards, is the builder wanted now, and when does it fall
// asleep? The supervisor asks before every step and hands the answer to reconcileStep as its
// desired state (`asleep` is off, with the failures kept).
import type { DesiredState } from '../controller.js';
import type { StepDesired } from '../reconciler/types.js';

export type BuilderMode = 'always' | 'on-demand';

/** What woke the builder, and when: a connection, a start request, an adopted VM. */
export interface Wake {
  at: number;
  by: string;
}

/** The endpoint's connections: held until the VM is ready, and forwarded to it. */
export interface ConnectionCounts {
  held: number;
  open: number;
  /** When a connection last opened or closed; null before the first. */
  lastActivityAt: number | null;
}

/** On-demand mode's settings, read at each step so config edits apply live. */
export interface DemandSettings {
  mode: BuilderMode;
  idleStopAfterMs: number;
}

export interface DemandInput {
  mode: BuilderMode;
  /** What the API asked for: `stopped` is off whatever the mode. */
  desired: DesiredState;
  /** The wake-up in effect; null while asleep. */
  wake: Wake | null;
  connections: ConnectionCounts;
  now: number;
  idleStopAfterMs: number;
}

export interface DemandDecision {
  desired: StepDesired;
  /** The idle time ran out now: the supervisor ends the wake-up and reports the idle stop. */
  idleStop: boolean;
  /** Awake with no connection: when the idle stop is due. */
  idleStopAt: number | null;
}

export function decideDemand(i: DemandInput): DemandDecision {
  if (i.mode === 'always' || i.desired === 'stopped') {
    return { desired: i.desired, idleStop: false, idleStopAt: null };
  }
  if (i.wake === null) return { desired: 'asleep', idleStop: false, idleStopAt: null };
  // An open connection (a running build) keeps the builder up, however long it takes.
  if (i.connections.held + i.connections.open > 0) {
    return { desired: 'running', idleStop: false, idleStopAt: null };
  }
  const idleSince = Math.max(i.wake.at, i.connections.lastActivityAt ?? i.wake.at);
  const idleStopAt = idleSince + i.idleStopAfterMs;
  if (i.now >= idleStopAt) return { desired: 'asleep', idleStop: true, idleStopAt: null };
  return { desired: 'running', idleStop: false, idleStopAt };
}
