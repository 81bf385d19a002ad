// The image build of the start in progress, as status shows it and events announce it: the
// builder's latest progress, when the build began, and an event at each phase change and at most
// once a second in between (a cold build unpacks about a hundred packages).
import type { ImageBuildProgress } from '../image/build-progress.js';

export interface ImageBuildStatus extends ImageBuildProgress {
  startedAt: string;
  updatedAt: string;
}

export class ImageProgress {
  private current: ImageBuildStatus | null = null;
  private lastAnnouncedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly now: () => number,
    private readonly announce: (p: ImageBuildStatus) => void,
    private readonly minGapMs = 1000,
  ) {}

  update(p: ImageBuildProgress): void {
    const now = this.now();
    const phaseChanged = this.current?.phase !== p.phase;
    const at = new Date(now).toISOString();
    this.current = { ...p, startedAt: this.current?.startedAt ?? at, updatedAt: at };
    if (phaseChanged || now - this.lastAnnouncedAt >= this.minGapMs) {
      this.lastAnnouncedAt = now;
      this.announce(this.current);
    }
  }

  /** The build ended (or its start did). */
  clear(): void {
    this.current = null;
    this.lastAnnouncedAt = Number.NEGATIVE_INFINITY;
  }

  get snapshot(): ImageBuildStatus | null {
    return this.current;
  }
}
