// A size-rotated log file: daemon.log, daemon.log.1, ... daemon.log.<keep>. Writes are
// synchronous appends, so the last lines before a crash are on disk (the original tool lost them).
import { closeSync, existsSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tailLines } from '../state/console-logs.js';

export interface RotatingFileOptions {
  path: string;
  /** Rotate once the file would grow past this many bytes. */
  maxBytes: number;
  /** How many rotated files to keep besides the current one. */
  keep: number;
}

export class RotatingFile extends Writable {
  private fd: number;
  private size: number;

  constructor(private readonly opts: RotatingFileOptions) {
    super();
    this.fd = openSync(opts.path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    try {
      if (this.size > 0 && this.size + chunk.length > this.opts.maxBytes) this.rotate();
      writeSync(this.fd, chunk);
      this.size += chunk.length;
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _final(done: (err?: Error | null) => void): void {
    closeSync(this.fd);
    done();
  }

  private rotate(): void {
    closeSync(this.fd);
    const { path, keep } = this.opts;
    rmSync(`${path}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    }
    if (keep >= 1) renameSync(path, `${path}.1`);
    else rmSync(path, { force: true });
    this.fd = openSync(path, 'a', 0o600);
    this.size = 0;
  }
}

/**
 * The last `lines` lines of a log RotatingFile writes, reaching into `<path>.1` when `<path>` has
 * fewer: right after a rotation the current file is nearly empty, and a reader following the log
 * (`linuxkitctl logs -f`) would otherwise never see the lines written just before it.
 */
export async function tailRotatedLog(path: string, lines: number): Promise<string[]> {
  const current = await tailLines(path, lines);
  if (current.length >= lines) return current;
  return [...(await tailLines(`${path}.1`, lines - current.length)), ...current];
}
