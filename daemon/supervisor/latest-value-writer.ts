// Saves a value that changes often (the step memory) without queueing every version: a write in
// progress finishes, then only the newest value that arrived meanwhile is written. The loop hands
// values over and never waits for the disk.
export class LatestValueWriter<T> {
  private next: { value: T } | null = null;
  private draining: Promise<void> | null = null;

  constructor(
    private readonly write: (value: T) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  save(value: T): void {
    this.next = { value };
    this.draining ??= this.drain();
  }

  /** Resolves once every value handed over so far is on disk (or its write failed). */
  flushed(): Promise<void> {
    return this.draining ?? Promise.resolve();
  }

  private async drain(): Promise<void> {
    while (this.next) {
      const { value } = this.next;
      this.next = null;
      try {
        await this.write(value);
      } catch (err) {
        this.onError(err);
      }
    }
    this.draining = null;
  }
}
