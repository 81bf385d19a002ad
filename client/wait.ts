// `start --wait` / `restart --wait`: return once the builder is healthy on a VM other than the one
// before the request. The status right after a restart may still show the old VM (even healthy),
// so health alone does not count. Events only wake the loop up; each check reads the status, so
// a lost event stream costs latency, never a wrong answer. An event that arrives while a status
// read is on its way means that read may be stale: the loop reads again at once.
import type { DaemonStatus, LinuxkitClient } from './api-client.js';

const POLL_MS = 500;

export type WaitOutcome =
  | { ok: true; status: DaemonStatus }
  | { ok: false; status: DaemonStatus; why: string };

export async function waitUntilHealthy(
  client: Pick<LinuxkitClient, 'status' | 'events'>,
  opts: {
    notPid: number | null;
    timeoutMs: number;
    onStatus?: (s: DaemonStatus) => void;
    /** Reads the status this often without events; POLL_MS unless told. */
    pollMs?: number;
  },
): Promise<WaitOutcome> {
  // Set by every event; cleared just before each status read.
  let eventSinceRead = false;
  let wake = (): void => {};
  const events = client.events(() => {
    eventSinceRead = true;
    wake();
  });
  const deadline = Date.now() + opts.timeoutMs;
  let sawNotFailed = false;
  try {
    for (;;) {
      eventSinceRead = false;
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
      if (eventSinceRead) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(opts.pollMs ?? POLL_MS, left));
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
