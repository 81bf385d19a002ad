// `logs -f`: the API serves "the last N lines", so following means polling and printing what is
// new since the previous answer.
import type { LinuxkitClient, LogSource } from './api-client.js';

/** How many lines each poll reads; more new lines than this between two polls are partly lost. */
export const FOLLOW_WINDOW = 2000;
const FOLLOW_POLL_MS = 1000;

/**
 * The lines of `current` that come after what `previous` showed. Both are tails of the same log:
 * the answer is found by aligning the end of `previous` with the start of `current`. When they
 * do not align (a new boot's console, a rotated log), all of `current` is new. A run of lines
 * identical to earlier ones can align too early, and then some repeats are not printed.
 */
export function newLinesSince(previous: string[], current: string[]): string[] {
  for (let shift = 0; shift < previous.length; shift++) {
    const overlap = previous.length - shift;
    if (overlap > current.length) continue;
    let aligned = true;
    for (let i = 0; i < overlap; i++) {
      if (previous[shift + i] !== current[i]) {
        aligned = false;
        break;
      }
    }
    if (aligned) return current.slice(overlap);
  }
  return current;
}

/** Prints the last `lines` lines, then new lines as they come, until the process is stopped. */
export async function followLogs(
  client: LinuxkitClient,
  opts: { source?: LogSource; lines?: number; write: (line: string) => void },
): Promise<never> {
  const first = await client.logs({ source: opts.source, lines: FOLLOW_WINDOW });
  for (const line of first.lines.slice(-(opts.lines ?? 200))) opts.write(line);
  let previous = first.lines;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
    const next = await client.logs({ source: opts.source, lines: FOLLOW_WINDOW });
    for (const line of newLinesSince(previous, next.lines)) opts.write(line);
    previous = next.lines;
  }
}
