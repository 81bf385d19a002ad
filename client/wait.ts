// `start --wait` / `restart --wait`: return once the builder is healthy on a VM other than the one
// before the request. The status right after a restart may still show the old VM (even healthy),
// so health alone does not count. Events only wake the loop up; each check reads the status, so
// a lost event stream costs latency, never a wrong answer.
import type { DaemonStatus, LinuxkitClient } from './api-client.js';

const POLL_MS = 500;

export type WaitOutcome =
  | { ok: true; status: DaemonStatus }
  | { ok: false; status: DaemonStatus; why: string };

export async function waitUntilHealthy(
  client: LinuxkitClient,
  opts: { notPid: number | null; timeoutMs: number; onStatus?: (s: DaemonStatus) => void },
): Promise<WaitOutcome> {
  let wake = (): void => {};
  const events = client.events(() => wake());
  const deadline = Date.now() + opts.timeoutMs;
  let sawNotFailed = false;
  try {
    for (;;) {
      const status = await client.status();
      opts.onStatus?.(status);
      const pid = status.vm.pid;
      if (status.healthy && pid !== null && pid !== opts.notPid) return { ok: true, status };
      if (status.desired === 'stopped')
        return { ok: false, status, why: 'the builder was stopped meanwhile' };
      // A builder that was failed before the request may still say so in the first answers.
      if (status.state === 'failed' && sawNotFailed) {
        return { ok: false, status, why: `the builder failed: ${status.failedReason ?? 'no reason given'}` };
      }
      if (status.state !== 'failed') sawNotFailed = true;
      const left = deadline - Date.now();
      if (left <= 0) {
        return {
          ok: false,
          status,
          why: `not healthy on a new VM after ${opts.timeoutMs / 1000} s (state ${status.state})`,
        };
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(POLL_MS, left));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    events.close();
  }
}
