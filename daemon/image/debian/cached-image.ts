// The image cache as the Debian builder lays it out, readable without the builder itself (no
// OpenPGP, no decompressors): `<cache>/<hash>/{<kernel forms>,initrd,manifest.json}`, named by the hash of
// what the image is made of, and one resolution record per (arch, guest contract, suites) that
// says which image the last resolution gave and when. A record younger than a day is a cache hit
// with no network at all; the daemon checks that in-process before it runs the builder.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestImage } from '../guest-image.js';
import { ARCH_PROFILES, DISK_MODULES, DLOPENED, PROGRAMS, SEEDS, type GuestArch } from './arch-profile.js';
import type { KernelFormat } from './kernel-form.js';
import type { ResolvedPackage } from './resolve.js';

/** Bump when what the builder makes from the same packages changes in a way its data below does not show. */
const RECIPE = 'linuxkit-nix debian guest image v3';

/** The builder's recipe for one architecture: its name, and the lists it picks files and modules by. */
function recipe(arch: GuestArch): string {
  return JSON.stringify({ RECIPE, profile: ARCH_PROFILES[arch], DISK_MODULES, SEEDS, PROGRAMS, DLOPENED });
}
const HASH_CHARS = 24;
/** How long a resolution is trusted before the mirror is asked again for updates. */
export const RESOLUTION_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export interface DebianImageManifest {
  arch: GuestArch;
  kernelVersion: string;
  cmdline: string;
  /** Every kernel form the image carries; the first is the one QEMU boots (GuestImage.kernel). */
  kernels: Array<{ file: string; format: KernelFormat; bytes: number }>;
  initrd: { file: string; compression: 'none'; bytes: number; unpackedBytes: number };
  modules: string[];
  packages: Record<string, string>;
  debian: { sources: Array<{ baseUrl: string; suite: string }>; packages: ResolvedPackage[] };
  builtAt: string;
}

/** A guest image as the daemon consumes it, plus the resolved Debian packages it was made from. */
export interface DebianImage extends GuestImage {
  manifest: DebianImageManifest;
}

/** The last resolution for one (arch, settings, guest contract): which image it gave, and when. */
export interface ResolutionRecord {
  resolvedAt: number;
  hash: string;
}

function digest(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p}\0`);
  return h.digest('hex').slice(0, HASH_CHARS);
}

/** The image folder's name: a pure function of what the image is made of. */
export function imageHash(arch: GuestArch, contractDigest: string, packages: ResolvedPackage[]): string {
  return digest(
    recipe(arch),
    arch,
    contractDigest,
    ...packages.map((p) => `${p.name} ${p.version} ${p.sha256}`),
  );
}

/** Where the resolution record for these inputs lives. */
export function resolutionRecordPath(
  cacheDir: string,
  arch: GuestArch,
  contractDigest: string,
  sources: Array<{ baseUrl: string; suite: string }>,
): string {
  return join(
    cacheDir,
    `debian-${arch}-${digest(recipe(arch), contractDigest, JSON.stringify(sources))}.json`,
  );
}

/** The recorded resolution and its image when both are there and the image is complete. */
export async function readRecordedImage(
  recordPath: string,
  cacheDir: string,
): Promise<{ record: ResolutionRecord; image: DebianImage } | null> {
  const record = await readFile(recordPath, 'utf8').then(
    (t) => JSON.parse(t) as ResolutionRecord,
    () => null,
  );
  if (!record || typeof record.hash !== 'string' || !/^[0-9a-f]+$/.test(record.hash)) return null;
  const image = await readDebianImage(join(cacheDir, record.hash), record.hash, false);
  return image ? { record, image } : null;
}

export function isFreshResolution(
  record: ResolutionRecord,
  now: number,
  maxAgeMs = RESOLUTION_MAX_AGE_MS,
): boolean {
  return now - record.resolvedAt < maxAgeMs && record.resolvedAt <= now;
}

/** The image in `dir` if its manifest and files are all there and of the recorded sizes. */
export async function readDebianImage(
  dir: string,
  hash: string,
  built: boolean,
): Promise<DebianImage | null> {
  let manifest: DebianImageManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as DebianImageManifest;
  } catch {
    return null;
  }
  if (!Array.isArray(manifest?.kernels) || manifest.kernels.length === 0 || !manifest.initrd?.file)
    return null;
  const files = [...manifest.kernels, manifest.initrd].map((f) => ({
    path: join(dir, f.file),
    bytes: f.bytes,
  }));
  const sizes = await Promise.all(
    files.map((f) =>
      stat(f.path).then(
        (s) => s.size,
        () => -1,
      ),
    ),
  );
  if (sizes.some((size, i) => size !== files[i].bytes)) return null;
  const kernels: GuestImage['kernels'] = {};
  for (const k of manifest.kernels) kernels[k.format] = join(dir, k.file);
  const kernel = files[0].path;
  const initrd = files[files.length - 1].path;
  return {
    hash,
    dir,
    kernel,
    kernels,
    initrd,
    cmdline: manifest.cmdline,
    sizeBytes: sizes[0] + sizes[sizes.length - 1],
    built,
    manifest,
  };
}
