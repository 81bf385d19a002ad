// Turns the effective config into the VmSpec a backend boots: the guest image (the project's
// cached one unless the config names its own kernel/initrd), keys handed in at boot, this
// boot's console log.
import { mkdir } from 'node:fs/promises';
import type { Accelerator, VmSpec } from './backend.js';
import type { DaemonConfig } from './config/schema.js';
import { GUEST_FILES } from './image/guest-contract.js';
import type { ImageBuildProgress } from './image/build-progress.js';
import { ensureGuestImage } from './image/guest-image.js';
import { debianSettingsForHost } from './image/image-settings.js';
import type { BuilderKeys } from './keys/builder-keys.js';
import { latestConsoleLog, newConsoleLog } from './state/console-logs.js';
import { ensureStoreDisk } from './state/store-disk.js';
import { guestForwardPort } from './on-demand/guest-forward-port.js';

export interface VmSpecContext {
  stateDir: string;
  consoleDir: string;
  imageCacheDir: string;
  keys: BuilderKeys;
  accel: Accelerator;
  log?: (msg: string) => void;
}

let bootSeq = 0;

export async function buildVmSpec(
  config: DaemonConfig,
  ctx: VmSpecContext,
  opts: { adopting: boolean; signal?: AbortSignal; onImageProgress?: (p: ImageBuildProgress) => void },
): Promise<VmSpec> {
  let kernel = config.image?.kernel;
  let initrd = config.image?.initrd;
  let cmdline = config.image?.cmdline;
  if (!kernel || !initrd || !cmdline) {
    const chosen = await debianSettingsForHost(config.image.debian);
    const image = await ensureGuestImage({
      arch: config.arch,
      cacheDir: ctx.imageCacheDir,
      settings: chosen.settings,
      signal: opts.signal,
      log: (msg) => ctx.log?.(msg),
      onProgress: opts.onImageProgress,
    });
    kernel ??= image.kernel;
    initrd ??= image.initrd;
    cmdline ??= image.cmdline;
  }
  await mkdir(ctx.consoleDir, { recursive: true, mode: 0o700 });
  const consoleLog = opts.adopting
    ? ((await latestConsoleLog(ctx.consoleDir)) ??
      (await newConsoleLog(ctx.consoleDir, new Date(), bootSeq++)))
    : await newConsoleLog(ctx.consoleDir, new Date(), bootSeq++);
  return {
    arch: config.arch,
    accel: ctx.accel,
    cpus: config.cpus,
    memoryMiB: config.memoryMiB,
    kernel,
    initrd,
    cmdline,
    sshPort: await guestForwardPort(config.mode, config.sshPort),
    stateDir: ctx.stateDir,
    consoleLog,
    disk: await ensureStoreDisk(ctx.stateDir, config.diskGiB),
    guestFiles: {
      [GUEST_FILES.authorizedKeys]: ctx.keys.clientPublicKey,
      [GUEST_FILES.hostKey]: ctx.keys.hostKey,
    },
  };
}
