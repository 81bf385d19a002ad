// hyperkit's console ring (`-l com1,...,log=<file>`): a 65536-byte file, truncated and
// memory-mapped at start; byte n of the console goes to ring[n % 65536]; the write offset is not
// stored anywhere; bytes never written are zero. This file turns one snapshot of it back into
// text, as well as one snapshot allows:
//
// 1. Never wrapped: the ring ends in zeros (the offset never reached the end). The text is
//    everything before that final run of zeros. This is exact.
// 2. Wrapped (no trailing zeros): the newest byte sits just before the write offset W and the
//    oldest just after it, so the text is ring[W..] + ring[..W] — but W is unknown. Console lines
//    from the kernel, and from this project's hyperkit guest (its /init logs through /dev/kmsg),
//    start with a printk time stamp "[ seconds.micros]"; read in ring order, the stamps rise,
//    except once: where the newest stamped line N meets the oldest stamped line O. W lies between
//    them. Linux console output ends in a newline almost always, so the line just before O is
//    taken to be the torn remnant of an overwritten line: the text starts with it and, as the
//    first line of a wrapped ring is always partial, drops it. If that line is N itself, W is
//    exactly O's start and nothing is torn.
// 3. Wrapped with no stamps (or stamps that fall more than once): the order cannot be recovered
//    from the bytes. The lines are returned in file order after a first line that says so.
//
// The backend also follows the ring while the VM runs (console-ring-follower.ts), which knows W
// exactly and copies the console into the per-boot log; this reader is for a single look.
import { open } from 'node:fs/promises';

export const CONSOLE_RING_SIZE = 65536;

export const UNORDERED_NOTE =
  '[console ring wrapped and its lines carry no time stamps: shown in ring order, the newest line may not be last]';

export interface RingText {
  /** The console text, oldest first, without the torn first line of a wrapped ring. */
  text: string;
  wrapped: boolean;
  /** The write offset, when it could be found (always when not wrapped). */
  writeOffset: number | null;
}

export function reconstructConsoleRing(ring: Buffer): RingText {
  if (ring.length === 0 || ring[ring.length - 1] === 0) {
    const end = trailingZeroStart(ring);
    // The guest printing NUL bytes is the only way to get zeros inside the text; drop them.
    return { text: stripNul(ring.subarray(0, end)), wrapped: false, writeOffset: end % CONSOLE_RING_SIZE };
  }
  const found = findSeamByTimestamps(ring);
  if (found === null) return { text: stripNul(ring), wrapped: true, writeOffset: null };
  const ordered = Buffer.concat([ring.subarray(found.seam), ring.subarray(0, found.seam)]);
  return {
    text: stripNul(found.torn ? dropFirstLine(ordered) : ordered),
    wrapped: true,
    writeOffset: found.seam,
  };
}

/** The last `lines` console lines of the ring file, oldest first (see the heuristic above). */
export async function readConsoleRing(path: string, lines: number): Promise<string[]> {
  if (!Number.isInteger(lines) || lines < 0) throw new Error(`lines must be an integer >= 0, got ${lines}`);
  let ring: Buffer;
  try {
    ring = await readRingFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const r = reconstructConsoleRing(ring);
  const all = toLines(r.text);
  if (lines === 0) return [];
  if (r.wrapped && r.writeOffset === null)
    return [UNORDERED_NOTE, ...(lines > 1 ? all.slice(-(lines - 1)) : [])];
  return all.slice(-lines);
}

/** Reads the whole ring; a file shorter than the ring (hyperkit not yet started) reads as zeros. */
export async function readRingFile(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(CONSOLE_RING_SIZE);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Serial output has \r\n and may end mid-line; the last, unfinished line is kept. */
export function toLines(text: string): string[] {
  const lines = text.replace(/\r/g, '').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function trailingZeroStart(ring: Buffer): number {
  let i = ring.length;
  while (i > 0 && ring[i - 1] === 0) i--;
  return i;
}

function stripNul(b: Buffer): string {
  return b.toString('utf8').replace(/\0/g, '');
}

function dropFirstLine(b: Buffer): Buffer {
  const nl = b.indexOf(0x0a);
  return nl < 0 ? Buffer.alloc(0) : b.subarray(nl + 1);
}

// "[    1.234567] ", optionally after a "<6>" level, as printk prints it with printk.time=1.
const STAMP = /^(?:<\d+>)?\[\s*(\d+)\.(\d+)\]/;

interface StampedLine {
  start: number;
  micros: number;
}

export interface Seam {
  /** Where the reconstructed text starts. */
  seam: number;
  /** The text starts with the torn remnant of an overwritten line, to be dropped. */
  torn: boolean;
}

/**
 * The seam (see the top of this file), or null. Lines are read at the ring's line boundaries;
 * the one that straddles the end of the file is joined with the start.
 */
export function findSeamByTimestamps(ring: Buffer): Seam | null {
  const size = ring.length;
  // Line starts: just after each newline, circularly.
  const starts: number[] = [];
  for (let i = 0; i < size; i++) if (ring[i] === 0x0a) starts.push((i + 1) % size);
  if (starts.length < 2) return null;
  starts.sort((a, b) => a - b);
  const stamped: StampedLine[] = [];
  for (const start of starts) {
    const head = circularSlice(ring, start, 40).toString('latin1');
    const m = STAMP.exec(head);
    if (m) stamped.push({ start, micros: Number(m[1]) * 1e6 + Number(m[2].padEnd(6, '0').slice(0, 6)) });
  }
  if (stamped.length < 2) return null;
  let drops = 0;
  let oldest = -1;
  for (let i = 0; i < stamped.length; i++) {
    const next = stamped[(i + 1) % stamped.length];
    if (next.micros < stamped[i].micros) {
      drops++;
      oldest = (i + 1) % stamped.length;
    }
  }
  if (drops !== 1) return null;
  const o = stamped[oldest].start;
  const before = starts[(starts.indexOf(o) - 1 + starts.length) % starts.length];
  // The newest stamped line right before the oldest: the write offset is O's start, nothing torn.
  const newest = stamped[(oldest - 1 + stamped.length) % stamped.length];
  if (newest.start === before) return { seam: o, torn: false };
  // Otherwise the line just before O is the remnant of an overwritten line.
  return { seam: before, torn: true };
}

function circularSlice(ring: Buffer, start: number, length: number): Buffer {
  if (start + length <= ring.length) return ring.subarray(start, start + length);
  return Buffer.concat([ring.subarray(start), ring.subarray(0, start + length - ring.length)]);
}
