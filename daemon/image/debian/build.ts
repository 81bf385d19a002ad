// The guest image from Debian's signed archive, built in Node: index (verified) → resolution →
// packages (verified, cached by SHA256) → initramfs (cpio newc) and kernel form → an image folder
// named by the hash of the resolution. A resolution younger than `maxResolutionAgeMs` is reused
// with no network at all; when the mirror cannot be reached an older one is used if its image is
// still in the cache.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../fs/atomic-write.js';
import type { ImageBuildProgress } from '../build-progress.js';
import { fetchSuiteIndex, httpGet, type HttpGet } from './archive.js';
import { ARCH_PROFILES, type GuestArch } from './arch-profile.js';
import {
  imageHash,
  isFreshResolution,
  readDebianImage,
  readRecordedImage,
  resolutionRecordPath,
  type DebianImage,
  type DebianImageManifest,
  type ResolutionRecord,
} from './cached-image.js';
import { writeCpioNewc } from './cpio.js';
import { fetchDeb } from './deb-cache.js';
import { unpackDeb } from './deb.js';
import { readGuestContract } from './guest-files.js';
import { initramfsEntries } from './initramfs.js';
import { arm64Image, type KernelForm, x86Kernels } from './kernel-form.js';
import { mergeSuites } from './package-index.js';
import { resolveImage } from './resolve.js';
import { suiteSources, type DebianSettings } from './settings.js';

export interface BuildDebianImageOptions {
  arch: GuestArch;
  cacheDir: string;
  settings: DebianSettings;
  /** Holds init, rootfs/ and keys/. */
  guestDir: string;
  get?: HttpGet;
  log?: (msg: string) => void;
  onProgress?: (p: ImageBuildProgress) => void;
  maxResolutionAgeMs?: number;
  now?: () => number;
}

export async function buildDebianGuestImage(opts: BuildDebianImageOptions): Promise<DebianImage> {
  const { arch, cacheDir, settings } = opts;
  const profile = ARCH_PROFILES[arch];
  if (!profile)
    throw new Error(`guest image arch ${JSON.stringify(arch)} is not supported; expected x86_64 or aarch64`);
  const get = opts.get ?? httpGet;
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => undefined);
  const progress = opts.onProgress ?? (() => undefined);
  const sources = suiteSources(settings);
  const contract = await readGuestContract(opts.guestDir);
  const recordPath = resolutionRecordPath(cacheDir, arch, contract.digest, sources);
  const found = await readRecordedImage(recordPath, cacheDir);
  const recorded = found?.image ?? null;
  if (found && isFreshResolution(found.record, now(), opts.maxResolutionAgeMs)) return found.image;

  const keys = await readFile(join(opts.guestDir, 'keys', 'debian-bookworm-archive.asc'), 'utf8');
  progress({
    phase: 'index',
    packages: 0,
    bytes: 0,
    message: `reading the signed package indexes of ${sources.map((s) => `${s.baseUrl} ${s.suite}`).join(', ')}`,
  });
  let suites: Awaited<ReturnType<typeof fetchSuiteIndex>>[];
  try {
    suites = await Promise.all(sources.map((s) => fetchSuiteIndex(s, profile.debArch, keys, get)));
  } catch (err) {
    const unreachable = (err as Error).message.startsWith('cannot reach ');
    if (unreachable && recorded) {
      log(
        `the Debian mirror cannot be reached (${(err as Error).message}); using the image resolved before, ${recorded.hash}`,
      );
      return recorded;
    }
    if (unreachable) {
      const mirrors = [...new Set(sources.map((s) => s.baseUrl))].join(' and ');
      throw new Error(
        `cannot build the ${arch} guest image: the Debian mirror ${mirrors} cannot be reached and ${cacheDir} holds no image built before (${(err as Error).message})`,
      );
    }
    throw err;
  }
  const index = mergeSuites(suites);
  const debDir = join(cacheDir, 'debs');
  const done = { packages: 0, bytes: 0 };
  const resolution = await resolveImage(arch, index, async (p) => {
    const deb = await fetchDeb(p, debDir, get);
    done.packages++;
    done.bytes += deb.length;
    progress({ phase: 'packages', ...done, message: `unpacking ${p.name} ${p.version}` });
    return unpackDeb(deb, `${p.filename}`);
  });
  for (const note of resolution.notes) log(note);
  const hash = imageHash(arch, contract.digest, resolution.packages);
  const dir = join(cacheDir, hash);
  const saveRecord = (): Promise<void> =>
    writeFileAtomic(recordPath, JSON.stringify({ resolvedAt: now(), hash } satisfies ResolutionRecord));
  const existing = await readDebianImage(dir, hash, false);
  if (existing) {
    await saveRecord();
    return existing;
  }

  progress({ phase: 'image', ...done, message: `writing the ${arch} kernel and initramfs` });
  // The first form is the one QEMU boots (GuestImage.kernel); hyperkit takes the bzImage.
  const kernels: KernelForm[] =
    arch === 'aarch64'
      ? [arm64Image(resolution.vmlinuz, 'the kernel')]
      : await x86Kernels(resolution.vmlinuz, 'the kernel');
  const initrd = writeCpioNewc(
    initramfsEntries({
      ...resolution.parts,
      rootfs: [...resolution.etcFiles, ...contract.rootfs],
      init: contract.init,
    }),
  );
  const manifest: DebianImageManifest = {
    arch,
    kernelVersion: resolution.kernelVersion,
    cmdline: profile.cmdline,
    kernels: kernels.map((k) => ({ file: k.format, format: k.format, bytes: k.data.length })),
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
    for (const k of kernels) await writeFile(join(tmp, k.format), k.data);
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
  log(
    `built the ${arch} guest image ${hash}: ${kernels.map((k) => `${k.format} ${k.data.length} bytes`).join(', ')}, initrd ${initrd.length} bytes`,
  );
  return image;
}
