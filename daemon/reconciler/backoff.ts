// The wait before restart attempt n: exponential, capped, with jitter so that many daemons
// (or many failures) do not retry in lockstep. Pure: the caller draws the random number.

export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Fraction of the delay added or removed at random: 0.2 gives delay × [0.8, 1.2). */
  jitter: number;
}

/** The delay before the restart that follows the `failures`-th consecutive failure (1-based). */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: number): number {
  const n = Math.max(1, Math.floor(failures));
  const cap = Math.max(0, policy.maxDelayMs);
  // multiplier ** large n is Infinity, which min() turns into the cap.
  const base = Math.min(cap, Math.max(0, policy.initialDelayMs) * Math.max(1, policy.multiplier) ** (n - 1));
  const r = Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0.5;
  const jitter = Math.min(Math.max(policy.jitter, 0), 1);
  const jittered = base * (1 + jitter * (2 * r - 1));
  // Never above the cap, and never zero: a zero wait would let a crash loop spin.
  return Math.max(1, Math.min(cap, Math.round(jittered)));
}
