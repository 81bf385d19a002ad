// Waiting for a condition on the status without polling: re-checked on each change the
// supervisor announces, bounded by a timer on the injected clock (so fake time works in tests).
import type { EventEmitter } from 'node:events';
import type { DaemonStatus } from '../controller.js';
import type { Clock } from './types.js';

export function waitForStatus(
  read: () => DaemonStatus,
  changes: EventEmitter,
  clock: Clock,
  pred: (s: DaemonStatus) => boolean,
  timeoutMs: number,
): Promise<DaemonStatus> {
  const first = read();
  if (pred(first)) return Promise.resolve(first);
  return new Promise((resolve, reject) => {
    const check = () => {
      const s = read();
      if (!pred(s)) return;
      done();
      resolve(s);
    };
    const timer = clock.setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for the builder; it is ${read().state}`));
    }, timeoutMs);
    const done = () => {
      changes.off('change', check);
      clock.clearTimeout(timer);
    };
    changes.on('change', check);
  });
}
