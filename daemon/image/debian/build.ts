// The guest image from Debian's signed archive, built in Node: index (verified) → resolution →
// packages (verified, cached by SHA256) → initramfs (cpio newc) and kernel form → an image folder
// named by the hash of the resolution. A resolution younger than `maxResolutionAgeMs` is reused
// with no network at all; when the mirror cannot be reached an older one is used if its image is
// still in the cache.
import type { GuestImage } from '../guest-image.js';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../fs/atomic-write.js';
import { fetchSuiteIndex, httpGet, type HttpGet } from './archive.js';
import { ARCH_PROFILES, type GuestArch } from './arch-profile.js';
import { writeCpioNewc } from './cpio.js';
import { fetchDeb } from './deb-cache.js';
import { unpackDeb } from './deb.js';
import { readGuestContract } from './guest-files.js';
import { initramfsEntries } from './initramfs.js';
import { arm64Image, x86Kernel } from './kernel-form.js';
import { mergeSuites } from './package-index.js';
import { resolveImage, type ResolvedPackage } from './resolve.js';
import { suiteSources, type DebianSettings } from './settings.js';

/** Bump when what the builder makes from the same packages changes. */
const RECIPE = 'linuxkit-nix debian guest image v1';
const HASH_CHARS = 24;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface BuildDebianImageOptions {
  arch: GuestArch;
  cacheDir: string;
  settings: DebianSettings;
  /** Holds init, rootfs/ and keys/. */
  guestDir: string;
  get?: HttpGet;
  log?: (msg: string) => void;
  maxResolutionAgeMs?: number;
  now?: () => number;
}

export interface DebianImageManifest {
  arch: GuestArch;
  kernelVersion: string;
  cmdline: string;
  kernel: { file: string; format: string; bytes: number };
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
interface ResolutionRecord {
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
  return digest(RECIPE, arch, ARCH_PROFILES[arch].cmdline, contractDigest, ...packages.map((p) => `${p.name} ${p.version} ${p.sha256}`));
}

export async function readDebianImage(dir: string, hash: string, built: boolean): Promise<DebianImage | null> {
  let manifest: DebianImageManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as DebianImageManifest;
  } catch {
    return null;
  }
  const kernel = join(dir, manifest.kernel.file);
  const initrd = join(dir, manifest.initrd.file);
  const sizes = await Promise.all([kernel, initrd].map((p) => stat(p).then((s) => s.size, () => -1)));
  if (sizes[0] !== manifest.kernel.bytes || sizes[1] !== manifest.initrd.bytes) return null;
  return { hash, dir, kernel, initrd, cmdline: manifest.cmdline, sizeBytes: sizes[0] + sizes[1], built, manifest };
}

export async function buildDebianGuestImage(opts: BuildDebianImageOptions): Promise<DebianImage> {
  const { arch, cacheDir, settings } = opts;
  const profile = ARCH_PROFILES[arch];
  if (!profile) throw new Error(`guest image arch ${JSON.stringify(arch)} is not supported; expected x86_64 or aarch64`);
  const get = opts.get ?? httpGet;
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => undefined);
  const sources = suiteSources(settings);
  const contract = await readGuestContract(opts.guestDir);
  const recordPath = join(cacheDir, `debian-${arch}-${digest(RECIPE, contract.digest, JSON.stringify(sources))}.json`);
  const record = await readFile(recordPath, 'utf8').then((t) => JSON.parse(t) as ResolutionRecord, () => null);
  const recorded = record ? await readDebianImage(join(cacheDir, record.hash), record.hash, false) : null;
  if (record && recorded && now() - record.resolvedAt < (opts.maxResolutionAgeMs ?? DAY_MS)) return recorded;

  const keys = await readFile(join(opts.guestDir, 'keys', 'debian-bookworm-archive.asc'), 'utf8');
  let suites;
  try {
    suites = await Promise.all(sources.map((s) => fetchSuiteIndex(s, profile.debArch, keys, get)));
  } catch (err) {
    const unreachable = (err as Error).message.startsWith('cannot reach ');
    if (unreachable && recorded) {
      log(`the Debian mirror cannot be reached (${(err as Error).message}); using the image resolved before, ${recorded.hash}`);
      return recorded;
    }
    if (unreachable) {
      const mirrors = [...new Set(sources.map((s) => s.baseUrl))].join(' and ');
      throw new Error(`cannot build the ${arch} guest image: the Debian mirror ${mirrors} cannot be reached and ${cacheDir} holds no image built before (${(err as Error).message})`);
    }
    throw err;
  }
  const index = mergeSuites(suites);
  const debDir = join(cacheDir, 'debs');
  const resolution = await resolveImage(arch, index, async (p) => {
    log(`unpacking ${p.name} ${p.version}`);
    return unpackDeb(await fetchDeb(p, debDir, get), `${p.filename}`);
  });
  const hash = imageHash(arch, contract.digest, resolution.packages);
  const dir = join(cacheDir, hash);
  const saveRecord = (): Promise<void> => writeFileAtomic(recordPath, JSON.stringify({ resolvedAt: now(), hash } satisfies ResolutionRecord));
  const existing = await readDebianImage(dir, hash, false);
  if (existing) {
    await saveRecord();
    return existing;
  }

  const kernel = arch === 'aarch64' ? arm64Image(resolution.vmlinuz, 'the kernel') : x86Kernel(resolution.vmlinuz, 'the kernel');
  const initrd = writeCpioNewc(initramfsEntries({ ...resolution.parts, rootfs: [...resolution.etcFiles, ...contract.rootfs], init: contract.init }));
  const manifest: DebianImageManifest = {
    arch,
    kernelVersion: resolution.kernelVersion,
    cmdline: profile.cmdline,
    kernel: { file: 'kernel', format: kernel.format, bytes: kernel.data.length },
    // Uncompressed: under tcg the kernel copies it faster than it decompresses even lz4.
    initrd: { file: 'initrd', compression: 'none', bytes: initrd.length, unpackedBytes: initrd.length },
    modules: resolution.modules,
    packages: Object.fromEntries(resolution.packages.map((p) => [p.name, p.version])),
    debian: { sources, packages: resolution.packages },
    builtAt: new Date(now()).toISOString(),
  };
  const tmp = join(cacheDir, `.build-${hash}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await writeFile(join(tmp, 'kernel'), kernel.data);
    await writeFile(join(tmp, 'initrd'), initrd);
    await writeFile(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(tmp, dir).catch((err: NodeJS.ErrnoException) => {
      // Another builder renamed its copy first; theirs is as good as ours.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  await saveRecord();
  const image = await readDebianImage(dir, hash, true);
  if (!image) throw new Error(`guest image ${hash} was built but ${dir} does not hold a complete image`);
  log(`built the ${arch} guest image ${hash}: kernel ${kernel.data.length} bytes (${kernel.format}), initrd ${initrd.length} bytes`);
  return image;
}
