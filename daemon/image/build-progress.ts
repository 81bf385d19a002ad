// What an image build reports while it runs: the builder prints it, the daemon shows it in status
// and events, linuxkitctl draws it. Total counts are unknown up front (the library closure is found
// as packages are unpacked), so progress is what is done so far.
export type ImageBuildPhase = 'index' | 'packages' | 'image';

export interface ImageBuildProgress {
  /** index: reading the signed package indexes; packages: fetching and unpacking; image: writing the initramfs and kernel. */
  phase: ImageBuildPhase;
  /** Packages fetched (or found in the cache) and unpacked so far. */
  packages: number;
  /** Bytes of those packages. */
  bytes: number;
  message: string;
}

/** The prefix of a progress line on the builder's stderr; the rest of the line is the JSON. */
export const PROGRESS_LINE_PREFIX = 'progress ';

export function progressLine(p: ImageBuildProgress): string {
  return `${PROGRESS_LINE_PREFIX}${JSON.stringify(p)}`;
}

/** The progress a builder line carries, or null for a plain log line. */
export function parseProgressLine(line: string): ImageBuildProgress | null {
  if (!line.startsWith(PROGRESS_LINE_PREFIX)) return null;
  try {
    const p = JSON.parse(line.slice(PROGRESS_LINE_PREFIX.length)) as ImageBuildProgress;
    return typeof p.phase === 'string' &&
      typeof p.packages === 'number' &&
      typeof p.bytes === 'number' &&
      typeof p.message === 'string'
      ? p
      : null;
  } catch {
    return null;
  }
}
