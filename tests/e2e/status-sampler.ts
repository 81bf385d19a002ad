// Calls GET /v1/status back to back (a short pause between calls) and keeps the answer times,
// so a test can report the slowest one while something slow happens in the daemon.
import { performance } from 'node:perf_hooks';
import type { LinuxkitClient } from '../../client/api-client.js';

export interface StatusFigures {
  count: number;
  errors: number;
  maxMs: number;
  p99Ms: number;
  medianMs: number;
}

export function statusSampler(client: LinuxkitClient, pauseMs = 20): { stop(): StatusFigures } {
  const times: number[] = [];
  let errors = 0;
  let running = true;
  void (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await client.status();
        times.push(performance.now() - t0);
      } catch {
        errors++;
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    stop() {
      running = false;
      const sorted = [...times].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
      return {
        count: times.length,
        errors,
        maxMs: sorted[sorted.length - 1] ?? NaN,
        p99Ms: at(0.99),
        medianMs: at(0.5),
      };
    },
  };
}
