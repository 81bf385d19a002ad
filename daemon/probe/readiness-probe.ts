// The builder is ready when Nix answers over SSH with the pinned host key: exactly what a remote
// build needs, and nothing less (QEMU's user network accepts TCP before sshd is up). The wait for
// a booting guest is the SSH banner's (ssh-banner.ts), so it ends as soon as sshd accepts.
import { runGuestCommand, type GuestSshTarget } from './guest-ssh.js';
import { awaitSshBanner, checkSshBanner } from './ssh-banner.js';

export interface ProbeResult {
  /** From the SSH server's banner to Nix's answer: the probe's own round trip. */
  latencyMs: number;
  /** e.g. "2.8.0" */
  nixVersion: string;
  /** From the call to the SSH server's banner: the wait for a booting guest, if any. */
  waitedMs: number;
}

/** A booting guest's SSH server is noticed within this of accepting. */
export const BANNER_POLL_MS = 150;

/** Parses `nix-store --version` output: "nix-store (Nix) 2.8.0". */
export function parseNixVersion(output: string): string | null {
  const m = /\(Nix\)\s+(\S+)/.exec(output);
  return m ? m[1] : null;
}

/**
 * Waits for the SSH server's banner on fresh connections (every BANNER_POLL_MS), then runs
 * `nix-store --version` over SSH on the connection that answered, all within `deadlineMs`.
 */
export async function probeBuilder(
  target: GuestSshTarget,
  opts: { deadlineMs: number },
): Promise<ProbeResult> {
  const started = performance.now();
  const { socket, waitedMs } = await awaitSshBanner(target.host, target.port, {
    deadlineMs: opts.deadlineMs,
    retryEveryMs: BANNER_POLL_MS,
  });
  const left = Math.max(1, opts.deadlineMs - (performance.now() - started));
  const res = await runGuestCommand(target, 'nix-store --version', { deadlineMs: left, sock: socket });
  const version = parseNixVersion(res.stdout);
  if (res.code !== 0 || !version) {
    throw new Error(
      `nix-store --version failed in the guest (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(0, 300) || 'no output'}`,
    );
  }
  return { latencyMs: Math.round(res.latencyMs), nixVersion: version, waitedMs };
}

/** One health check of the given kind (see ProbeCheck in daemon/reconciler/types.ts). */
export function probeGuest(
  target: GuestSshTarget,
  check: 'nix' | 'ssh',
  opts: { deadlineMs: number },
): Promise<{ latencyMs: number; nixVersion: string | null }> {
  if (check === 'nix') return probeBuilder(target, opts);
  return checkSshBanner(target.host, target.port, opts).then((r) => ({
    latencyMs: r.latencyMs,
    nixVersion: null,
  }));
}

/** Probes until the first success or until `timeoutMs` runs out; returns the successful probe. */
export async function waitUntilReady(
  target: GuestSshTarget,
  opts: { timeoutMs: number; attemptDeadlineMs?: number; intervalMs?: number; signal?: AbortSignal },
): Promise<ProbeResult & { waitedMs: number }> {
  const start = performance.now();
  let lastError: Error | null = null;
  while (performance.now() - start < opts.timeoutMs) {
    if (opts.signal?.aborted) throw new Error('stopped waiting for the builder: aborted');
    try {
      const res = await probeBuilder(target, { deadlineMs: opts.attemptDeadlineMs ?? 10_000 });
      return { ...res, waitedMs: Math.round(performance.now() - start) };
    } catch (err) {
      lastError = err as Error;
      // A mismatched host key will not fix itself by waiting.
      if (lastError.name === 'HostKeyMismatchError') throw lastError;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
  throw new Error(
    `builder not ready after ${opts.timeoutMs} ms: ${lastError?.message ?? 'no attempt finished'}`,
  );
}
