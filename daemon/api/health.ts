// The health answer is a pure function of the status, so the handler stays a one-liner and the
// wording is tested without a server.
import type { DaemonStatus } from '../controller.js';
import type { HealthResponse } from './schemas.js';

export function healthOf(status: DaemonStatus): HealthResponse {
  if (status.healthy) return { healthy: true, state: status.state };
  return { healthy: false, state: status.state, reason: unhealthyReason(status) };
}

function unhealthyReason(status: DaemonStatus): string {
  switch (status.state) {
    case 'failed':
      return `failed: ${status.failedReason ?? 'no reason recorded'}`;
    case 'stopped':
      return status.desired === 'stopped' ? 'stopped on request' : 'stopped';
    case 'stopping':
      return 'stopping';
    case 'backoff': {
      const after = status.lastExit ? ` (last exit: ${status.lastExit.reason})` : '';
      const next = status.backoff?.nextStartAt ? `; next start at ${status.backoff.nextStartAt}` : '';
      return `waiting to restart${after}${next}`;
    }
    case 'starting':
      return status.probe.error
        ? `starting: SSH probe not answering yet (${status.probe.error})`
        : 'starting: waiting for SSH';
    default:
      return status.probe.error
        ? `SSH probe failing: ${status.probe.error}`
        : `${status.state}: SSH probe not ok`;
  }
}
