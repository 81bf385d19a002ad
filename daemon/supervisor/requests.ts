// What an API request means in each state, and when it is refused (ConflictError, HTTP 409).
// A request only changes what is wanted and answers at once; the loop acts on it when it can
// (a stop during a start's image build cancels that start; a start during a stop starts the VM
// again once the old one is gone). Pure, so the rules read as a table:
// - start: never refused while the daemon runs; from `failed` or `backoff` it starts at once
//   with a full set of attempts; during a stop it starts again after it; while up it changes
//   nothing.
// - stop: never refused; stopping is always safe and wins over a restart or a boot.
// - restart: refused while a VM is booting (`starting` with a VM up: wait, or stop it); during a
//   start that has no VM yet, or a restart already under way, it is accepted and changes nothing;
//   replaces a running or degraded VM; from stopped/stopping/backoff/failed it is a start.
// - disk reset: only while the builder is stopped or failed, with no VM and no start in flight
//   (the disk is the running guest's /nix; a backoff is a start that is due); it changes nothing
//   wanted, so a failed builder stays failed until `start`.
// - every request is refused once the daemon is shutting down.
import type { BuilderState, DesiredState } from '../controller.js';

export type Request = 'start' | 'stop' | 'restart';

/** `explicit-start` clears failed/backoff; `replace-vm` asks for a controlled restart. */
export type RequestPlan =
  | { ok: true; desired: DesiredState; effect: 'explicit-start' | 'replace-vm' | 'none' }
  | { ok: false; conflict: string };

export interface RequestContext {
  state: BuilderState;
  desired: DesiredState;
  vmUp: boolean;
  /** A start operation (image, stale files, spawning the hypervisor) is in flight. */
  startInFlight: boolean;
  shuttingDown: boolean;
}

export function planRequest(request: Request, s: RequestContext): RequestPlan {
  if (s.shuttingDown) return { ok: false, conflict: 'the daemon is shutting down' };
  switch (request) {
    case 'stop':
      return { ok: true, desired: 'stopped', effect: 'none' };
    case 'start':
      return { ok: true, desired: 'running', effect: 'explicit-start' };
    case 'restart':
      if (s.state === 'starting' && s.vmUp) {
        const conflict =
          'the builder is still booting; restart it once it is running or degraded, or stop it';
        return { ok: false, conflict };
      }
      if (
        s.desired === 'running' &&
        (s.state === 'stopping' || (s.state === 'starting' && s.startInFlight))
      ) {
        // The VM is being replaced or started already: the VM it ends with is a new one.
        return { ok: true, desired: 'running', effect: 'none' };
      }
      if (s.vmUp && (s.state === 'running' || s.state === 'degraded')) {
        return { ok: true, desired: 'running', effect: 'replace-vm' };
      }
      return { ok: true, desired: 'running', effect: 'explicit-start' };
  }
}

/** Whether the store disk may be removed now (`linuxkitctl disk reset`); why not otherwise. */
export function planDiskReset(s: RequestContext): { ok: true } | { ok: false; conflict: string } {
  if (s.shuttingDown) return { ok: false, conflict: 'the daemon is shutting down' };
  const idle = (s.state === 'stopped' || s.state === 'failed') && !s.vmUp && !s.startInFlight;
  if (idle) return { ok: true };
  const now =
    s.state === 'backoff'
      ? 'waiting to start again (backoff)'
      : s.startInFlight && s.state !== 'starting'
        ? 'starting'
        : s.vmUp && (s.state === 'stopped' || s.state === 'failed')
          ? `${s.state} with its VM still up`
          : s.state;
  return {
    ok: false,
    conflict:
      `the builder is ${now}: the store disk is reset only while the builder is stopped ` +
      '(linuxkitctl stop, then linuxkitctl disk reset)',
  };
}
