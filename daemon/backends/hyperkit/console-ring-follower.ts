// Copies hyperkit's console ring into the boot's console log while the VM runs, so the console
// of every boot is kept whole (the ring holds only the last 64 KiB and is emptied when hyperkit
// starts again). Watching the ring from its first byte, the follower always knows the write
// offset: everything written since the last look is one run of changed bytes starting there.
import { appendFile } from 'node:fs/promises';
import { CONSOLE_RING_SIZE, readRingFile, reconstructConsoleRing } from './console-ring.js';

export interface RingDelta {
  /** The bytes written since the previous snapshot, oldest first. */
  bytes: Buffer;
  /** The write offset after them; null while it is still unknown. */
  pos: number | null;
}

/**
 * What was written between two snapshots. With a known offset the new bytes run from it to the
 * last byte that changed; bytes rewritten with their old values are found once a later byte
 * changes. With an unknown offset (a VM adopted from an earlier daemon) the changed bytes form
 * the one arc outside the longest unchanged stretch. More than 64 KiB between two looks cannot
 * be told apart from less: the follower looks often enough for a console.
 */
export function ringDelta(prev: Buffer, cur: Buffer, pos: number | null): RingDelta {
  const size = cur.length;
  if (prev.length !== size) throw new Error(`ring snapshots differ in size: ${prev.length} and ${size}`);
  if (pos !== null) {
    let last = -1;
    for (let k = 0; k < size; k++) {
      const i = (pos + k) % size;
      if (cur[i] !== prev[i]) last = k;
    }
    const n = last + 1;
    return { bytes: circular(cur, pos, n), pos: (pos + n) % size };
  }
  const changed: number[] = [];
  for (let i = 0; i < size; i++) if (cur[i] !== prev[i]) changed.push(i);
  if (changed.length === 0) return { bytes: Buffer.alloc(0), pos: null };
  // The longest stretch of unchanged bytes ends where the new bytes begin.
  let best = -1;
  let bestGap = -1;
  for (let j = 0; j < changed.length; j++) {
    const next = changed[(j + 1) % changed.length];
    const gap = (next - changed[j] - 1 + size) % size;
    if (gap > bestGap) {
      bestGap = gap;
      best = j;
    }
  }
  const start = changed[(best + 1) % changed.length];
  const n = ((changed[best] - start + size) % size) + 1;
  return { bytes: circular(cur, start, n), pos: (start + n) % size };
}

function circular(ring: Buffer, start: number, n: number): Buffer {
  if (start + n <= ring.length) return Buffer.from(ring.subarray(start, start + n));
  return Buffer.concat([ring.subarray(start), ring.subarray(0, start + n - ring.length)]);
}

export interface FollowerOptions {
  /** How often to look at the ring. Default 1000 ms. */
  intervalMs?: number;
  /**
   * The VM was already running (adopted): what the ring holds now was written before; only
   * what comes after is copied. Otherwise the ring is new (hyperkit empties it at start).
   */
  adopted?: boolean;
  onError?: (err: Error) => void;
}

export class ConsoleRingFollower {
  private prev: Buffer = Buffer.alloc(CONSOLE_RING_SIZE);
  private pos: number | null = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();
  private started = false;
  private stopped = false;

  constructor(
    readonly ringPath: string,
    readonly logPath: string,
    private readonly opts: FollowerOptions = {},
  ) {}

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.opts.adopted) {
      const snapshot = await readRingFile(this.ringPath).catch(() => null);
      if (snapshot) {
        this.prev = snapshot;
        const r = reconstructConsoleRing(snapshot);
        // Only an unwrapped ring tells the offset exactly; otherwise the first change will.
        this.pos = r.wrapped ? null : r.writeOffset;
      } else {
        this.pos = null;
      }
    }
    this.schedule();
  }

  /** Copies what is new now; polls never overlap. */
  poll(): Promise<void> {
    this.polling = this.polling.then(() => this.pollOnce()).catch((err: Error) => this.opts.onError?.(err));
    return this.polling;
  }

  /** A last look (the VM has exited, so nothing is lost), then no more. */
  async stop(): Promise<void> {
    if (this.stopped) return this.polling;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.started) await this.poll();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.poll().then(() => this.schedule());
    }, this.opts.intervalMs ?? 1000);
    // A console copier never keeps the daemon alive by itself.
    this.timer.unref();
  }

  private async pollOnce(): Promise<void> {
    let cur: Buffer;
    try {
      cur = await readRingFile(this.ringPath);
    } catch (err) {
      // hyperkit creates the ring a moment after it starts.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const delta = ringDelta(this.prev, cur, this.pos);
    this.prev = cur;
    this.pos = delta.pos;
    // Raw bytes: a chunk may end inside a UTF-8 character that the next chunk completes.
    const bytes = delta.bytes.filter((b) => b !== 0);
    if (bytes.length > 0) await appendFile(this.logPath, bytes);
  }
}
