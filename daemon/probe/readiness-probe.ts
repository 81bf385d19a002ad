// The builder is ready when Nix answers over SSH with the pinned host key: exactly what a remote
// build needs, and nothing less (QEMU's user network accepts TCP before sshd is up).
import { runGuestCommand, type GuestSshTarget } from './guest-ssh.js';

export interface ProbeResult {
  latencyMs: number;
  /** e.g. "2.8.0" */
  nixVersion: string;
}

/** Parses `nix-store --version` output: "nix-store (Nix) 2.8.0". */
export function parseNixVersion(output: string): string | null {
  const m = /\(Nix\)\s+(\S+)/.exec(output);
  return m ? m[1] : null;
}

export async function probeBuilder(
  target: GuestSshTarget,
  opts: { deadlineMs: number },
): Promise<ProbeResult> {
  const res = await runGuestCommand(target, 'nix-store --version', opts);
  const version = parseNixVersion(res.stdout);
  if (res.code !== 0 || !version) {
    throw new Error(
      `nix-store --version failed in the guest (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(0, 300) || 'no output'}`,
    );
  }
  return { latencyMs: Math.round(res.latencyMs), nixVersion: version };
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
