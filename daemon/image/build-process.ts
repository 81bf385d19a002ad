// Runs the Debian image builder (daemon/image/debian/cli.ts, compiled) as a child process of the
// daemon: its CPU work (decompressing, hashing, writing the initramfs) never blocks the daemon's
// loop or API, it runs at a lower CPU priority than the daemon and the user's work, and a cancel
// kills it and removes the temporary files it was writing, so nothing half-written is left.
import { spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../project-root.js';
import { parseProgressLine, type ImageBuildProgress } from './build-progress.js';
import type { GuestArch } from './debian/arch-profile.js';
import { readDebianImage, type DebianImage } from './debian/cached-image.js';
import type { DebianSettings } from './debian/settings.js';

export interface ImageBuilderOptions {
  arch: GuestArch;
  cacheDir: string;
  settings: DebianSettings;
  guestDir: string;
  signal?: AbortSignal;
  log?: (msg: string) => void;
  onProgress?: (p: ImageBuildProgress) => void;
}

/** The builder's own nice value: below the daemon, so status answers and the user's work come first. */
const BUILDER_NICENESS = 10;

export class ImageBuildCancelledError extends Error {
  constructor(arch: GuestArch) {
    super(`the ${arch} guest image build was cancelled`);
    this.name = 'ImageBuildCancelledError';
  }
}

export function imageBuilderScript(): string {
  return join(projectRoot(), 'dist', 'daemon', 'image', 'debian', 'cli.js');
}

/** The builder's command line: a pure function of the options. */
export function imageBuilderArgs(
  o: Pick<ImageBuilderOptions, 'arch' | 'cacheDir' | 'settings' | 'guestDir'>,
): string[] {
  const s = o.settings;
  return [
    imageBuilderScript(),
    '--arch',
    o.arch,
    '--cache',
    o.cacheDir,
    '--guest-dir',
    o.guestDir,
    '--mirror',
    s.mirror,
    '--security-mirror',
    s.securityMirror,
    '--suites',
    s.suites.join(','),
    ...(s.snapshot ? ['--snapshot', s.snapshot] : []),
  ];
}

export async function runImageBuilder(o: ImageBuilderOptions): Promise<DebianImage> {
  if (o.signal?.aborted) throw new ImageBuildCancelledError(o.arch);
  const child = spawn(process.execPath, imageBuilderArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) {
    try {
      setPriority(child.pid, BUILDER_NICENESS);
    } catch {
      // Not permitted or already gone: it runs at the daemon's priority.
    }
  }
  let stdout = '';
  let lastLines: string[] = [];
  let partial = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter((l) => l.trim() !== '')) {
      const progress = parseProgressLine(line);
      if (progress) {
        o.onProgress?.(progress);
        continue;
      }
      lastLines = [...lastLines.slice(-4), line];
      o.log?.(line);
    }
  });
  const onAbort = () => child.kill('SIGKILL');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    },
  );
  o.signal?.removeEventListener('abort', onAbort);
  if (partial.trim() !== '') lastLines = [...lastLines.slice(-4), partial];

  if (o.signal?.aborted) {
    if (child.pid !== undefined) await removeLeftovers(o.cacheDir, child.pid);
    throw new ImageBuildCancelledError(o.arch);
  }
  if (exit.error)
    throw new Error(`cannot run the guest image builder ${imageBuilderScript()}: ${exit.error.message}`);
  if (exit.code !== 0) {
    if (child.pid !== undefined) await removeLeftovers(o.cacheDir, child.pid);
    const said = lastLines.map((l) => l.replace(/^error: /, '')).pop() ?? '(no output)';
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    throw new Error(`the ${o.arch} guest image build failed (the builder ${how}): ${said}`);
  }
  let result: { hash: string; dir: string; built: boolean };
  try {
    result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as typeof result;
  } catch {
    throw new Error(`the guest image builder printed no result: ${JSON.stringify(stdout.slice(-200))}`);
  }
  const image = await readDebianImage(result.dir, result.hash, result.built);
  if (!image)
    throw new Error(`the guest image builder reported ${result.dir}, which does not hold a complete image`);
  return image;
}

/**
 * What a killed builder leaves: its build folder (`.build-<hash>-<pid>-…`) and the temporary files
 * of its atomic writes (`.<name>.<pid>.<random>.tmp`) in the cache and its .deb folder.
 */
export function isLeftoverOf(name: string, pid: number): boolean {
  return (
    (name.startsWith('.build-') && name.includes(`-${pid}-`)) ||
    (name.startsWith('.') && name.endsWith('.tmp') && name.includes(`.${pid}.`))
  );
}

async function removeLeftovers(cacheDir: string, pid: number): Promise<void> {
  for (const dir of [cacheDir, join(cacheDir, 'debs')]) {
    const names = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => isLeftoverOf(n, pid))
        .map((n) => rm(join(dir, n), { recursive: true, force: true })),
    );
  }
}
