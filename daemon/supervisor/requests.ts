// What an API request means in each state, and when it is refused (ConflictError, HTTP 409).
// Pure, so the rules read as a table:
// - start: refused while stopping on request (start again once stopped); from `failed` or
//   `backoff` it starts at once with a full set of attempts; while up it changes nothing.
// - stop: never refused; stopping is always safe and wins over a restart or a boot.
// - restart: refused while `starting` (the VM is booting; wait, or stop it) and while
//   `stopping`; replaces a running or degraded VM; from stopped/backoff/failed it is a start.
// - every request is refused once the daemon is shutting down.
import type { BuilderState, DesiredState } from '../controller.js';

export type Request = 'start' | 'stop' | 'restart';

/** `explicit-start` clears failed/backoff; `replace-vm` asks for a controlled restart. */
export type RequestPlan =
  | { ok: true; desired: DesiredState; effect: 'explicit-start' | 'replace-vm' | 'none' }
  | { ok: false; conflict: string };

export function planRequest(
  request: Request,
  s: { state: BuilderState; desired: DesiredState; vmUp: boolean; shuttingDown: boolean },
): RequestPlan {
  if (s.shuttingDown) return { ok: false, conflict: 'the daemon is shutting down' };
  const stoppingOnRequest = s.state === 'stopping' && s.desired === 'stopped';
  switch (request) {
    case 'stop':
      return { ok: true, desired: 'stopped', effect: 'none' };
    case 'start':
      if (stoppingOnRequest) {
        return { ok: false, conflict: 'the builder is stopping; start it again once it has stopped' };
      }
      return { ok: true, desired: 'running', effect: 'explicit-start' };
    case 'restart':
      if (s.state === 'starting') {
        const conflict = 'the builder is still booting; restart it once it is running or degraded, or stop it';
        return { ok: false, conflict };
      }
      if (stoppingOnRequest) return { ok: false, conflict: 'the builder is stopping; start it once it has stopped' };
      if (s.state === 'stopping') return { ok: false, conflict: 'a restart is already in progress' };
      if (s.vmUp && (s.state === 'running' || s.state === 'degraded')) {
        return { ok: true, desired: 'running', effect: 'replace-vm' };
      }
      return { ok: true, desired: 'running', effect: 'explicit-start' };
  }
}
