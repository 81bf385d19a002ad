// What `start --wait` / `restart --wait` show while the daemon builds the guest image: on a
// terminal one line redrawn in place, otherwise a plain line at each phase and at most every 5 s
// in between (so a CI log gets a few lines, not hundreds).
import type { DaemonStatus } from './api-client.js';
import { formatImageBuild } from './format.js';

const PLAIN_EVERY_MS = 5000;

export interface ProgressSink {
  isTTY: boolean;
  columns: number;
  write(text: string): void;
}

export interface ProgressState {
  phase: string | null;
  printedAt: number;
  drawn: boolean;
}

export const NO_PROGRESS: ProgressState = { phase: null, printedAt: Number.NEGATIVE_INFINITY, drawn: false };

/** The text to write for this status (null: nothing) and the state after it. Pure. */
export function progressOutput(
  prev: ProgressState,
  s: DaemonStatus,
  now: Date,
  tty: { isTTY: boolean; columns: number },
): { text: string | null; next: ProgressState } {
  if (!s.image) {
    // The build ended: a terminal's redrawn line is closed with a newline.
    return { text: tty.isTTY && prev.drawn ? '\n' : null, next: NO_PROGRESS };
  }
  const line = formatImageBuild(s.image, now);
  if (tty.isTTY) {
    const fitted = line.length > tty.columns - 1 ? `${line.slice(0, Math.max(0, tty.columns - 2))}…` : line;
    return {
      text: `\r\x1b[K${fitted}`,
      next: { phase: s.image.phase, printedAt: now.getTime(), drawn: true },
    };
  }
  const due = s.image.phase !== prev.phase || now.getTime() - prev.printedAt >= PLAIN_EVERY_MS;
  if (!due) return { text: null, next: prev };
  return { text: `${line}\n`, next: { phase: s.image.phase, printedAt: now.getTime(), drawn: false } };
}

export function progressReporter(sink: ProgressSink): { show(s: DaemonStatus): void; end(): void } {
  let state = NO_PROGRESS;
  const tty = { isTTY: sink.isTTY, columns: sink.columns };
  return {
    show(s) {
      const { text, next } = progressOutput(state, s, new Date(), tty);
      state = next;
      if (text) sink.write(text);
    },
    end() {
      if (state.drawn) sink.write('\n');
      state = NO_PROGRESS;
    },
  };
}
