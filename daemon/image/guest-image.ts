// The builder VM's guest image (kernel + initramfs), built by guest/build-image.sh from Debian
// packages (x86_64: those installed on this machine; aarch64: Debian's arm64 packages, fetched by
// guest/arm64/fetch-packages.sh into `<cacheDir>/packages-arm64/`) and kept in a content-addressed
// cache: the same inputs always map to the same `<cacheDir>/<hash>/`, so a second call reuses it.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { projectRoot } from '../project-root.js';

export type GuestImageArch = 'x86_64' | 'aarch64';

/** The folder inside the image cache where the arm64 packages are fetched and unpacked. */
export const ARM64_PACKAGES_DIR = 'packages-arm64';

/** Files of the guest folder that only the named architecture's image is made from. */
const ARCH_ONLY_DIRS: Record<string, GuestImageArch> = { arm64: 'aarch64' };

export interface GuestImage {
  /** Content hash of the inputs; also the name of the image's folder. */
  hash: string;
  dir: string;
  kernel: string;
  initrd: string;
  /** Base kernel command line; see guestKernelCmdline() for the per-boot switches. */
  cmdline: string;
  /** kernel + initrd, in bytes. */
  sizeBytes: number;
  /** True when this call ran the build; false when the cache already had it. */
  built: boolean;
}

export interface EnsureGuestImageOptions {
  arch: GuestImageArch;
  cacheDir: string;
  log?: (msg: string) => void;
  /** The folder with build-image.sh, init and rootfs/; defaults to the project's guest/. */
  guestDir?: string;
}

/** What build-image.sh writes to manifest.json (the fields read here). */
export interface GuestImageManifest {
  arch: string;
  kernelVersion: string;
  cmdline: string;
  kernel: { file: string; format: string; bytes: number };
  initrd: { file: string; compression: string; bytes: number; unpackedBytes: number };
  modules: string[];
  packages: Record<string, string>;
  builtAt: string;
}

export interface GuestImageInputs {
  arch: GuestImageArch;
  /** Every file of the guest folder: path relative to it, executable bit, sha256 of the content. */
  files: Array<{ path: string; executable: boolean; sha256: string }>;
  /**
   * `build-image.sh --print-inputs`: kernel version and checksum, modules, package versions (for
   * aarch64, those of every arm64 package the image takes files from).
   */
  buildInputs: string;
}

/** Bump when the cache layout or the hash recipe changes. */
const RECIPE = 'linuxkit-nix guest image v1';
const HASH_CHARS = 24;
const STALE_BUILD_MS = 60 * 60 * 1000;
/** Images kept besides the current one (another checkout or daemon version may use them). */
const KEEP_IMAGES = 2;
const IMAGE_DIR = new RegExp(`^[0-9a-f]{${HASH_CHARS}}$`);

export function defaultGuestDir(): string {
  return join(projectRoot(), 'guest');
}

/** `LINUXKIT_IMAGE_CACHE`, else the platform's per-user cache folder. */
export function defaultImageCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.LINUXKIT_IMAGE_CACHE) return resolve(env.LINUXKIT_IMAGE_CACHE);
  const home = env.HOME || homedir();
  return platform === 'darwin'
    ? join(home, 'Library', 'Caches', 'linuxkit-nix', 'images')
    : join(home, '.cache', 'linuxkit-nix', 'images');
}

/** The cache key: a pure function of the inputs. */
export function guestImageHash(inputs: GuestImageInputs): string {
  const h = createHash('sha256');
  h.update(`${RECIPE}\narch ${inputs.arch}\n`);
  for (const f of [...inputs.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`file ${f.path} ${f.executable ? 'x' : '-'} ${f.sha256}\n`);
  }
  h.update(inputs.buildInputs);
  return h.digest('hex').slice(0, HASH_CHARS);
}

/** build-image.sh's arguments that say where an architecture's packages come from. */
function packageArgs(arch: GuestImageArch, cacheDir: string | undefined): string[] {
  return arch === 'aarch64' && cacheDir !== undefined ? ['--packages-dir', join(resolve(cacheDir), ARM64_PACKAGES_DIR)] : [];
}

/**
 * Reads everything the image is made of, without building it (a fraction of a second once the
 * arm64 packages are fetched; the first aarch64 call fetches them). `cacheDir` places the arm64
 * packages; without it build-image.sh's default folder is used.
 */
export async function guestImageInputs(opts: { arch: GuestImageArch; guestDir?: string; cacheDir?: string }): Promise<GuestImageInputs> {
  const guestDir = opts.guestDir ?? defaultGuestDir();
  const files: GuestImageInputs['files'] = [];
  for (const path of await listFiles(guestDir)) {
    const rel = relative(guestDir, path).split('\\').join('/');
    const only = ARCH_ONLY_DIRS[rel.split('/')[0]];
    if (only !== undefined && only !== opts.arch) continue;
    const [content, st] = await Promise.all([readFile(path), stat(path)]);
    files.push({
      path: rel,
      executable: (st.mode & 0o111) !== 0,
      sha256: createHash('sha256').update(content).digest('hex'),
    });
  }
  const buildInputs = await runScript(guestDir, ['--print-inputs', '--arch', opts.arch, ...packageArgs(opts.arch, opts.cacheDir)]);
  return { arch: opts.arch, files, buildInputs };
}

/**
 * Returns the cached image for the current inputs, building it first when the cache has none.
 * Builds go to a private temporary folder renamed into place, so concurrent callers (two
 * daemons, parallel tests) each end with the same complete image.
 */
export async function ensureGuestImage(opts: EnsureGuestImageOptions): Promise<GuestImage> {
  if (opts.arch !== 'x86_64' && opts.arch !== 'aarch64') {
    throw new Error(`guest image arch ${JSON.stringify(opts.arch)} is not supported; expected x86_64 or aarch64`);
  }
  const guestDir = opts.guestDir ?? defaultGuestDir();
  const cacheDir = resolve(opts.cacheDir);
  const inputs = await guestImageInputs({ arch: opts.arch, guestDir, cacheDir });
  const hash = guestImageHash(inputs);
  const dir = join(cacheDir, hash);

  const cached = await readImage(dir, hash, false);
  if (cached) {
    // The folder's mtime records the last use, which pruning goes by.
    const now = new Date();
    await utimes(dir, now, now).catch(() => undefined);
    return cached;
  }
  if (existsSync(dir)) {
    // Incomplete or damaged (a file deleted by hand): move it aside, then build afresh.
    opts.log?.(`guest image ${hash} in ${dir} is incomplete; rebuilding it`);
    const aside = join(cacheDir, `.broken-${hash}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await rename(dir, aside).catch(() => undefined);
    await rm(aside, { recursive: true, force: true });
  }

  await removeStaleBuilds(cacheDir);
  const tmp = join(cacheDir, `.build-${hash}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const kernelVersion = /^kernel (\S+) /m.exec(inputs.buildInputs)?.[1];
  const args = [tmp, '--arch', opts.arch, ...(kernelVersion ? ['--kernel-version', kernelVersion] : []), ...packageArgs(opts.arch, cacheDir)];
  opts.log?.(`building guest image ${hash} in ${cacheDir}`);
  const started = Date.now();
  try {
    await runScript(guestDir, args);
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another builder renamed its copy first; theirs is as good as ours.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const image = await readImage(dir, hash, true);
  if (!image) throw new Error(`guest image ${hash} was built but ${dir} does not hold a complete image`);
  opts.log?.(`built guest image ${hash} in ${((Date.now() - started) / 1000).toFixed(1)} s (${image.sizeBytes} bytes)`);
  const removed = await pruneGuestImages(cacheDir, { keep: KEEP_IMAGES, current: hash, arch: opts.arch });
  if (removed.length > 0) opts.log?.(`removed unused guest images ${removed.join(', ')}`);
  return image;
}

/**
 * Removes all but the `keep` most recently used images (besides `current`); with `arch`, only
 * among that architecture's images, so an x86_64 and an aarch64 builder sharing a cache never
 * prune each other's. Each image is about 150 MB and every edit of guest/ or package upgrade makes
 * a new one. A VM booted from a removed image is unaffected: QEMU reads the kernel and initrd only
 * at start.
 */
export async function pruneGuestImages(cacheDir: string, opts: { keep: number; current?: string; arch?: GuestImageArch }): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return [];
  }
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
    const arch = (JSON.parse(text) as Partial<GuestImageManifest>).arch;
    return typeof arch === 'string' ? arch : 'x86_64';
  } catch {
    return 'x86_64';
  }
}

/** The image in `dir` if its manifest and files are all there and of the recorded sizes. */
async function readImage(dir: string, hash: string, built: boolean): Promise<GuestImage | null> {
  let manifest: GuestImageManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as GuestImageManifest;
  } catch {
    return null;
  }
  const kernel = join(dir, manifest.kernel?.file ?? 'kernel');
  const initrd = join(dir, manifest.initrd?.file ?? 'initrd');
  const sizes = await Promise.all([stat(kernel), stat(initrd)].map((p) => p.then((s) => s.size, () => -1)));
  if (sizes[0] !== manifest.kernel?.bytes || sizes[1] !== manifest.initrd?.bytes) return null;
  return { hash, dir, kernel, initrd, cmdline: manifest.cmdline, sizeBytes: sizes[0] + sizes[1], built };
}

export async function readGuestImageManifest(image: Pick<GuestImage, 'dir'>): Promise<GuestImageManifest> {
  return JSON.parse(await readFile(join(image.dir, 'manifest.json'), 'utf8')) as GuestImageManifest;
}

/** Leftovers of builds that were killed midway. */
async function removeStaleBuilds(cacheDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return;
  }
  const now = Date.now();
  await Promise.all(
    names
      .filter((n) => n.startsWith('.build-') || n.startsWith('.broken-'))
      .map(async (n) => {
        const st = await stat(join(cacheDir, n)).catch(() => null);
        if (st && now - st.mtimeMs > STALE_BUILD_MS) await rm(join(cacheDir, n), { recursive: true, force: true });
      }),
  );
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}

function runScript(guestDir: string, args: string[]): Promise<string> {
  const script = join(guestDir, 'build-image.sh');
  return new Promise((resolvePromise, reject) => {
    execFile('bash', [script, ...args], { maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.trim().split('\n').slice(-5).join('\n') || err.message;
        reject(new Error(`${script} ${args.join(' ')} failed: ${detail}`));
      } else {
        resolvePromise(stdout);
      }
    });
  });
}
