// The loop both file watchers run (config.json; the registration files): follow some files
// through chokidar, wait for a burst of events to settle, then run one check at a time.
import { watch, type FSWatcher } from 'chokidar';
import * as path from 'node:path';

export interface WatchedFilesOptions {
  /** Quiet time after the last event before `onSettled` runs; editors write in bursts. */
  debounceMs: number;
  /** Called once a burst of events on the followed files has settled. */
  onSettled: () => void;
  /** The watcher itself failed (e.g. a folder became unreadable). */
  onError: (err: unknown) => void;
}

export class WatchedFiles {
  private watcher: FSWatcher | undefined;
  private dirs = new Set<string>();
  private files = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: WatchedFilesOptions) {}

  /**
   * Follows `files` from now on (replacing the set before). Their folders are watched, filtered
   * to the files, so a file replaced by rename, or deleted and made again, is still seen.
   * Resolves once a new watcher is ready; the same folders keep the watcher they have.
   */
  async follow(files: Iterable<string>): Promise<void> {
    if (this.closed) return;
    const wanted = new Set([...files].map((f) => path.resolve(f)));
    const dirs = new Set([...wanted].map((f) => path.dirname(f)));
    this.files = wanted;
    const sameDirs = dirs.size === this.dirs.size && [...dirs].every((d) => this.dirs.has(d));
    if (sameDirs && this.watcher) return;
    const old = this.watcher;
    this.dirs = dirs;
    const watcher = watch([...dirs], {
      ignoreInitial: true,
      depth: 0,
      ignored: (p: string) => !this.dirs.has(p) && !this.files.has(p),
    });
    this.watcher = watcher;
    watcher.on('all', (_event, p) => {
      if (this.files.has(p)) this.schedule();
    });
    watcher.on('error', (err) => this.opts.onError(err));
    await new Promise<void>((resolve) => watcher.once('ready', resolve));
    await old?.close();
    if (this.closed) await watcher.close();
  }

  /** Runs `onSettled` after `debounceMs` of quiet; each call starts the wait again. */
  schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.opts.onSettled();
    }, this.opts.debounceMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.close();
  }
}

/** Runs tasks one at a time, in call order; a task that fails does not stop the next. */
export class SerialRuns {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every task queued so far has ended. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
