// The policy and "no probe yet" value the reconciler and supervisor tests share.
import type { ObservedProbe, Policy } from '../../daemon/reconciler/types.js';

export const testPolicy: Policy = {
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
  maxAttempts: 5,
  stablePeriodMs: 60_000,
  bootGraceMs: 30_000,
  degradedRestartMs: 60_000,
  probeIntervalMs: 10_000,
  nixProbeIntervalMs: 60_000,
  bootProbeIntervalMs: 1000,
  stopGraceMs: 15_000,
};

export const noProbe: ObservedProbe = {
  ok: false,
  at: null,
  firstFailureAt: null,
  lastOkAt: null,
  lastNixOkAt: null,
  error: null,
  inFlight: false,
};
