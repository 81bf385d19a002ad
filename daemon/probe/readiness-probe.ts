// The builder is ready when Nix answers over SSH with the pinned host key: exactly what a remote
// build needs, and nothing less (QEMU's user network accepts TCP before sshd is up). "Nix answers"
// is the guest's nix-daemon completing the worker protocol's handshake over `nix-daemon --stdio`,
// the way ssh-ng opens every build (nix-daemon-handshake.ts). The wait for a booting guest is the
// SSH banner's (ssh-banner.ts), so it ends as soon as sshd accepts.
import type { GuestLink } from './guest-link.js';
import { runGuestCommand, type GuestSshTarget } from './guest-ssh.js';
import {
  handshakeRequest,
  NIX_DAEMON_COMMAND,
  parseHandshakeReply,
  replyComplete,
} from './nix-daemon-handshake.js';
import { awaitSshBanner } from './ssh-banner.js';

export interface ProbeResult {
  /** From the SSH server's banner to Nix's answer: the probe's own round trip. */
  latencyMs: number;
  /** e.g. "2.8.0"; "protocol 1.32" from a daemon older than 1.33, which does not say. */
  nixVersion: string;
  /** From the call to the SSH server's banner: the wait for a booting guest, if any. */
  waitedMs: number;
}

/** A booting guest's SSH server is noticed within this of accepting. */
export const BANNER_POLL_MS = 50;

/**
 * Waits for the SSH server's banner on fresh connections (every BANNER_POLL_MS), then has the
 * guest's nix-daemon answer the worker protocol's handshake over SSH on the connection that
 * answered, all within `deadlineMs`.
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
  const res = await runGuestCommand(target, NIX_DAEMON_COMMAND, {
    deadlineMs: left,
    sock: socket,
    stdin: handshakeRequest(),
    endStdinWhen: replyComplete,
  });
  let reply: ReturnType<typeof parseHandshakeReply>;
  try {
    reply = parseHandshakeReply(res.stdoutBytes);
  } catch (err) {
    const stderr = res.stderr.trim().slice(0, 300);
    throw new Error(
      `${NIX_DAEMON_COMMAND} in the guest (exit ${res.code}): ${(err as Error).message}${stderr ? `; stderr: ${stderr}` : ''}`,
    );
  }
  return {
    latencyMs: Math.round(res.latencyMs),
    nixVersion: reply.nixVersion ?? `protocol ${reply.protocol}`,
    waitedMs,
  };
}

/**
 * One health check of the given kind (see ProbeCheck in daemon/reconciler/types.ts): the Nix probe
 * on a fresh connection, or the liveness check on the connection `link` keeps (guest-link.ts).
 */
export async function probeGuest(
  target: GuestSshTarget,
  check: 'nix' | 'ssh',
  opts: { deadlineMs: number; link: GuestLink },
): Promise<{ latencyMs: number; nixVersion: string | null }> {
  if (check === 'nix') return probeBuilder(target, opts);
  const { latencyMs } = await opts.link.check(opts);
  return { latencyMs, nixVersion: null };
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
