// linuxkitctl image build|status|prune: the guest image cache, without the daemon, so a machine
// or a CI job can prepare the image before the first start and clean old ones. The cache is the
// installed builder's (<state dir>/image), LINUXKIT_IMAGE_CACHE, or --cache DIR; the Debian
// settings and the architecture come from that builder's config file when it has one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  candidateLayouts,
  currentProcessFacts,
  parseCommandArgs,
  processIo,
  UsageError,
  type CommandIo,
  type ProcessFacts,
} from './cli-context.js';

export const IMAGE_USAGE = `Usage: linuxkitctl image <build|status|prune> [options]

  build [--arch x86_64|aarch64]   Build the guest image now (a cache hit when it is there already)
  status                          List the cached images: architecture, kernel, sizes, last use
  prune [--keep N]                Keep the N most recently used images of each architecture
                                  (default 1) and the Debian packages they need; remove the rest

  --cache DIR         the image cache (default: LINUXKIT_IMAGE_CACHE, else the installed
                      builder's <state dir>/image)
  --system / --user / --builder NAME / --root DIR
                      which installed builder's cache and config to use
  --json              print JSON
`;

const SUBCOMMANDS = ['build', 'status', 'prune'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

export interface ImageDeps {
  facts: ProcessFacts;
}

interface Target {
  cacheDir: string;
  configPath: string | null;
}

async function findTarget(
  common: ReturnType<typeof parseCommandArgs>['common'],
  cacheFlag: string | undefined,
  facts: ProcessFacts,
): Promise<Target> {
  const layouts = await candidateLayouts(common.scope, common.root, facts, common.builder);
  const installed = layouts.find((c) => existsSync(c.layout.configPath)) ?? layouts[0];
  const configPath =
    installed && existsSync(installed.layout.configPath) ? installed.layout.configPath : null;
  const cacheDir =
    cacheFlag ??
    facts.env.LINUXKIT_IMAGE_CACHE ??
    (installed ? join(installed.layout.stateDir, 'image') : null);
  if (!cacheDir) throw new UsageError('no image cache found: pass --cache DIR');
  return { cacheDir, configPath };
}

export async function runImage(
  argv: string[],
  io: CommandIo = processIo,
  deps?: Partial<ImageDeps>,
): Promise<number> {
  const sub = argv[0];
  try {
    if (sub === undefined)
      throw new UsageError(`name a command: ${SUBCOMMANDS.join(', ')} (see linuxkitctl image --help)`);
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      io.out(IMAGE_USAGE);
      return 0;
    }
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new UsageError(
        `unknown image command ${JSON.stringify(sub)}; expected one of ${SUBCOMMANDS.join(', ')}`,
      );
    }
    const { common, values } = parseCommandArgs(`image ${sub}`, argv.slice(1), {
      cache: { type: 'string' },
      json: { type: 'boolean' },
      ...(sub === 'build' ? { arch: { type: 'string' } } : {}),
      ...(sub === 'prune' ? { keep: { type: 'string' } } : {}),
    });
    if (common.help) {
      io.out(IMAGE_USAGE);
      return 0;
    }
    const facts = deps?.facts ?? currentProcessFacts();
    const target = await findTarget(common, values.cache as string | undefined, facts);
    const json = values.json === true;
    return await SUBCOMMAND_RUNNERS[sub as Subcommand](target, values, io, json);
  } catch (err) {
    io.err(`linuxkitctl image${sub && !sub.startsWith('-') ? ` ${sub}` : ''}: ${(err as Error).message}\n`);
    return 1;
  }
}

type Runner = (
  target: Target,
  values: Record<string, string | boolean | undefined>,
  io: CommandIo,
  json: boolean,
) => Promise<number>;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

const SUBCOMMAND_RUNNERS: Record<Subcommand, Runner> = {
  async build(target, values, io, json) {
    const { loadConfigFile, defaultConfig } = await import('../../daemon/config/load.js');
    let config = defaultConfig();
    if (target.configPath) {
      const loaded = await loadConfigFile(target.configPath);
      if (!loaded.ok)
        throw new Error(
          `${target.configPath}: ${loaded.errors.map((e) => `${e.key ? `${e.key}: ` : ''}${e.message}`).join('; ')}`,
        );
      config = loaded.config;
    }
    const arch = (values.arch as string | undefined) ?? config.arch;
    if (arch !== 'x86_64' && arch !== 'aarch64')
      throw new UsageError(`--arch must be x86_64 or aarch64; got ${JSON.stringify(arch)}`);
    const { debianSettingsForHost } = await import('../../daemon/image/image-settings.js');
    const { ensureGuestImage } = await import('../../daemon/image/guest-image.js');
    const chosen = await debianSettingsForHost(config.image.debian);
    if (!json)
      io.err(
        `building the ${arch} guest image in ${target.cacheDir} from ${chosen.settings.mirror} (${chosen.from.mirror})\n`,
      );
    const started = Date.now();
    const image = await ensureGuestImage({
      arch,
      cacheDir: target.cacheDir,
      settings: chosen.settings,
      log: json ? undefined : (line) => io.err(`  ${line}\n`),
    });
    const seconds = (Date.now() - started) / 1000;
    const m = image.manifest;
    if (json) {
      io.out(
        `${JSON.stringify({ hash: image.hash, dir: image.dir, arch: m.arch, built: image.built, seconds, kernelVersion: m.kernelVersion, kernelBytes: m.kernels[0].bytes, kernels: m.kernels.map((k) => k.format), initrdBytes: m.initrd.bytes, mirror: chosen.settings.mirror })}\n`,
      );
    } else {
      const how = image.built ? `built in ${seconds.toFixed(1)} s` : 'already in the cache';
      io.out(
        `${m.arch} guest image ${image.hash} (${how}): kernel ${m.kernelVersion} ${m.kernels.map((k) => `${k.format} ${mib(k.bytes)}`).join(', ')}, initrd ${mib(m.initrd.bytes)}\n  ${image.dir}\n`,
      );
    }
    return 0;
  },

  async status(target, _values, io, json) {
    const { listCachedImages } = await import('../../daemon/image/image-cache.js');
    const images = await listCachedImages(target.cacheDir);
    if (json) {
      io.out(`${JSON.stringify({ cacheDir: target.cacheDir, images })}\n`);
      return 0;
    }
    if (images.length === 0) {
      io.out(`no guest image in ${target.cacheDir} (linuxkitctl image build makes one)\n`);
      return 0;
    }
    let text = `guest images in ${target.cacheDir}, most recently used first:\n`;
    for (const i of images) {
      text += `  ${i.hash}  ${i.arch.padEnd(7)}  kernel ${i.kernelVersion}  ${mib(i.kernelBytes)} + ${mib(i.initrdBytes)}  ${i.packages} packages  last used ${i.lastUsed}\n`;
    }
    io.out(text);
    return 0;
  },

  async prune(target, values, io, json) {
    const keepText = (values.keep as string | undefined) ?? '1';
    if (!/^\d+$/.test(keepText) || Number(keepText) < 1)
      throw new UsageError(`--keep must be a whole number of at least 1; got ${JSON.stringify(keepText)}`);
    const { pruneImageCache } = await import('../../daemon/image/image-cache.js');
    const report = await pruneImageCache(target.cacheDir, { keep: Number(keepText) });
    if (json) io.out(`${JSON.stringify({ cacheDir: target.cacheDir, ...report })}\n`);
    else {
      const images = report.removedImages.length ? report.removedImages.join(', ') : 'none';
      io.out(
        `removed images: ${images}; removed ${report.removedDebs} unused Debian packages; freed ${mib(report.freedBytes)} in ${target.cacheDir}\n`,
      );
    }
    return 0;
  },
};
