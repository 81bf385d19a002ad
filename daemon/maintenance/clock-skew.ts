// The guest's clock against the host's, and when to set it. A guest falls behind after the
// host sleeps (the VM is paused with it) and a clock far off breaks TLS in builds and makes
// `make` see files from the future. Pure: the runner reads `date +%s` over SSH and acts.

/** Parses the guest's `date +%s`: the last line that is a whole number of seconds. */
export function parseGuestEpoch(output: string): number {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const last = lines[lines.length - 1];
  if (last === undefined || !/^-?\d{1,12}$/.test(last)) {
    throw new Error(`the guest's date +%s printed no epoch seconds: ${JSON.stringify(output.slice(0, 200))}`);
  }
  return Number(last);
}

export interface SkewMeasurement {
  /** Guest minus host, in ms: positive when the guest is ahead. The middle of [minMs, maxMs]. */
  skewMs: number;
  /** The skew is certainly within [minMs, maxMs]. */
  minMs: number;
  maxMs: number;
}

/**
 * The guest printed `guestEpochS` (whole seconds, rounded down) at some moment between
 * `hostBeforeMs` (the SSH command was sent) and `hostAfterMs` (its output arrived). The skew is
 * then known to within that round trip plus one second.
 */
export function measureSkew(m: {
  guestEpochS: number;
  hostBeforeMs: number;
  hostAfterMs: number;
}): SkewMeasurement {
  if (!(m.hostAfterMs >= m.hostBeforeMs)) throw new Error('hostAfterMs must not be before hostBeforeMs');
  const minMs = m.guestEpochS * 1000 - m.hostAfterMs;
  const maxMs = (m.guestEpochS + 1) * 1000 - m.hostBeforeMs;
  return { skewMs: Math.round((minMs + maxMs) / 2), minMs, maxMs };
}

export type ClockDecision = { correct: false; reason: string } | { correct: true; reason: string };

/** Sets the clock only when it is certainly off by more than `maxSkewMs`, whatever the round trip. */
export function decideClockCorrection(s: SkewMeasurement, maxSkewMs: number): ClockDecision {
  if (s.minMs > maxSkewMs)
    return { correct: true, reason: `the guest clock is ${formatSkew(s.skewMs)} ahead of the host` };
  if (s.maxMs < -maxSkewMs)
    return { correct: true, reason: `the guest clock is ${formatSkew(s.skewMs)} behind the host` };
  return {
    correct: false,
    reason: `guest clock within ${formatSkew(Math.max(Math.abs(s.minMs), Math.abs(s.maxMs)))} of the host`,
  };
}

/**
 * The command that sets the guest clock to the host's. It runs `expectedDelayMs` after it is
 * sent (an SSH handshake, about one round trip of the last command), so it aims at that moment.
 */
export function setClockCommand(
  hostNowMs: number,
  expectedDelayMs: number,
): { epochS: number; command: string } {
  const epochS = Math.round((hostNowMs + Math.max(0, expectedDelayMs)) / 1000);
  return { epochS, command: `date -u -s @${epochS} >/dev/null && date +%s` };
}

/** "3600 s", "2.5 s", "850 ms". */
export function formatSkew(ms: number): string {
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(a)} ms`;
  if (a < 10_000) return `${Math.round(a / 100) / 10} s`;
  return `${Math.round(a / 1000)} s`;
}
