// The builder VM's guest image (kernel + initramfs), as the daemon asks for it: the cached image
// for this architecture and these Debian settings, built first when the cache has none. The cache
// is read in-process (a fresh resolution is a hit with no network and no builder); a build runs
// the Debian builder in a child process (daemon/image/build-process.ts), so the daemon's loop and
// API never wait on its CPU work. Old images are pruned after a build, per architecture.
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { projectRoot } from '../project-root.js';
import type { ImageBuildProgress } from './build-progress.js';
import { runImageBuilder } from './build-process.js';
import { ARCH_PROFILES, type GuestArch } from './debian/arch-profile.js';
import {
  isFreshResolution,
  readRecordedImage,
  resolutionRecordPath,
  type DebianImage,
} from './debian/cached-image.js';
import { readGuestContract } from './debian/guest-files.js';
import type { KernelFormat } from './debian/kernel-form.js';
import { suiteSources, type DebianSettings } from './debian/settings.js';

export type GuestImageArch = GuestArch;

export interface GuestImage {
  /** Content hash of what the image is made of; also the name of the image's folder. */
  hash: string;
  dir: string;
  /** The kernel QEMU boots: the ELF vmlinux (PVH entry) on x86_64, the Image on aarch64. */
  kernel: string;
  /** Every kernel form the image carries, by format (hyperkit boots the x86_64 bzImage). */
  kernels: Partial<Record<KernelFormat, string>>;
  initrd: string;
  /** Base kernel command line; see guestKernelCmdline() for the per-boot switches. */
  cmdline: string;
  /** kernel (QEMU's) + initrd, in bytes. */
  sizeBytes: number;
  /** True when this call ran the build; false when the cache already had it. */
  built: boolean;
}

export interface EnsureGuestImageOptions {
  arch: GuestImageArch;
  cacheDir: string;
  settings: DebianSettings;
  log?: (msg: string) => void;
  /** Progress of a build, as the builder reports it. */
  onProgress?: (p: ImageBuildProgress) => void;
  /** Aborting kills a running build and removes what it left half-written. */
  signal?: AbortSignal;
  /** The folder with init, rootfs/ and keys/; defaults to the project's guest/. */
  guestDir?: string;
}

/** Images kept besides the current one, per architecture (another checkout or version may use them). */
const KEEP_IMAGES = 2;
const IMAGE_DIR = /^[0-9a-f]{24}$/;

export function defaultGuestDir(): string {
  return join(projectRoot(), 'guest');
}

/** Returns the cached image for these settings, running the builder first when the cache has none. */
export async function ensureGuestImage(opts: EnsureGuestImageOptions): Promise<DebianImage> {
  if (!ARCH_PROFILES[opts.arch]) {
    throw new Error(
      `guest image arch ${JSON.stringify(opts.arch)} is not supported; expected x86_64 or aarch64`,
    );
  }
  const guestDir = opts.guestDir ?? defaultGuestDir();
  const cacheDir = resolve(opts.cacheDir);
  const contract = await readGuestContract(guestDir);
  const found = await readRecordedImage(
    resolutionRecordPath(cacheDir, opts.arch, contract.digest, suiteSources(opts.settings)),
    cacheDir,
  );
  if (found && isFreshResolution(found.record, Date.now())) {
    // The folder's mtime records the last use, which pruning goes by.
    const now = new Date();
    await utimes(found.image.dir, now, now).catch(() => undefined);
    return found.image;
  }
  const image = await runImageBuilder({
    arch: opts.arch,
    cacheDir,
    settings: opts.settings,
    guestDir,
    signal: opts.signal,
    log: opts.log,
    onProgress: opts.onProgress,
  });
  const removed = await pruneGuestImages(cacheDir, {
    keep: KEEP_IMAGES,
    current: image.hash,
    arch: opts.arch,
  });
  if (removed.length > 0) opts.log?.(`removed unused guest images ${removed.join(', ')}`);
  return image;
}

/**
 * Removes all but the `keep` most recently used images (besides `current`); with `arch`, only
 * among that architecture's images, so an x86_64 and an aarch64 builder sharing a cache never
 * prune each other's. A VM booted from a removed image is unaffected: QEMU reads the kernel and
 * initrd only at start.
 */
export async function pruneGuestImages(
  cacheDir: string,
  opts: { keep: number; current?: string; arch?: GuestImageArch },
): Promise<string[]> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  const images = (
    await Promise.all(
      names
        .filter((n) => IMAGE_DIR.test(n) && n !== opts.current)
        .map(async (n) => {
          const text = await readFile(join(cacheDir, n, 'manifest.json'), 'utf8').catch(() => null);
          const dir = await stat(join(cacheDir, n)).catch(() => null);
          if (text === null || !dir) return null;
          if (opts.arch !== undefined && manifestArch(text) !== opts.arch) return null;
          return { name: n, usedMs: dir.mtimeMs };
        }),
    )
  ).filter((x): x is { name: string; usedMs: number } => x !== null);
  const doomed = images.sort((a, b) => b.usedMs - a.usedMs).slice(Math.max(0, opts.keep));
  await Promise.all(doomed.map((d) => rm(join(cacheDir, d.name), { recursive: true, force: true })));
  return doomed.map((d) => d.name).sort();
}

/** The architecture a manifest records; x86_64 for one that does not parse or say (older images were all x86_64). */
function manifestArch(text: string): string {
  try {
    const arch = (JSON.parse(text) as { arch?: unknown }).arch;
    return typeof arch === 'string' ? arch : 'x86_64';
  } catch {
    return 'x86_64';
  }
}
