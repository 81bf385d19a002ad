// What the guest image cache holds, and pruning it: the images (one folder each, named by hash)
// with their architecture, kernel, sizes and last use, and the Debian packages they were made
// from. Used by `linuxkitctl image status|prune`; the daemon prunes after each build itself.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readDebianImage, type DebianImage } from './debian/cached-image.js';
import { pruneGuestImages } from './guest-image.js';

export interface CachedImage {
  hash: string;
  arch: string;
  kernelVersion: string;
  kernelBytes: number;
  initrdBytes: number;
  packages: number;
  builtAt: string;
  /** The folder's mtime: the daemon touches it each time it boots the image. */
  lastUsed: string;
}

const IMAGE_DIR = /^[0-9a-f]{24}$/;
const DEB = /^([0-9a-f]{64})\.deb$/;

async function completeImages(cacheDir: string): Promise<DebianImage[]> {
  const names = (await readdir(cacheDir).catch(() => [] as string[])).filter((n) => IMAGE_DIR.test(n));
  const images = await Promise.all(names.map((n) => readDebianImage(join(cacheDir, n), n, false)));
  return images.filter((i): i is DebianImage => i !== null);
}

/** The complete images in the cache, most recently used first. */
export async function listCachedImages(cacheDir: string): Promise<CachedImage[]> {
  const out: CachedImage[] = [];
  for (const image of await completeImages(cacheDir)) {
    const m = image.manifest;
    const used = await stat(image.dir);
    out.push({
      hash: image.hash,
      arch: m.arch,
      kernelVersion: m.kernelVersion,
      kernelBytes: m.kernels[0].bytes,
      initrdBytes: m.initrd.bytes,
      packages: m.debian?.packages?.length ?? Object.keys(m.packages ?? {}).length,
      builtAt: m.builtAt,
      lastUsed: used.mtime.toISOString(),
    });
  }
  return out.sort((a, b) => (a.lastUsed < b.lastUsed ? 1 : a.lastUsed > b.lastUsed ? -1 : 0));
}

export interface PruneReport {
  removedImages: string[];
  removedDebs: number;
  freedBytes: number;
}

/**
 * Keeps the `keep` most recently used images of each architecture and the .deb files they were
 * made from; removes the rest. `keep` 1 leaves what each architecture boots now.
 */
export async function pruneImageCache(cacheDir: string, opts: { keep: number }): Promise<PruneReport> {
  if (!Number.isInteger(opts.keep) || opts.keep < 1)
    throw new Error(`--keep must be a whole number of at least 1; got ${opts.keep}`);
  const before = await completeImages(cacheDir);
  const sizeOf = (i: DebianImage) => i.sizeBytes;
  const removedImages: string[] = [];
  for (const arch of new Set(before.map((i) => i.manifest.arch))) {
    removedImages.push(...(await pruneGuestImages(cacheDir, { keep: opts.keep, arch })));
  }
  let freedBytes = before.filter((i) => removedImages.includes(i.hash)).reduce((n, i) => n + sizeOf(i), 0);
  const kept = before.filter((i) => !removedImages.includes(i.hash));
  const wanted = new Set(kept.flatMap((i) => (i.manifest.debian?.packages ?? []).map((p) => p.sha256)));
  const debDir = join(cacheDir, 'debs');
  let removedDebs = 0;
  for (const name of await readdir(debDir).catch(() => [] as string[])) {
    const m = DEB.exec(name);
    if (!m || wanted.has(m[1])) continue;
    const path = join(debDir, name);
    freedBytes += (await stat(path).catch(() => null))?.size ?? 0;
    await rm(path, { force: true });
    removedDebs++;
  }
  return { removedImages: removedImages.sort(), removedDebs, freedBytes };
}
