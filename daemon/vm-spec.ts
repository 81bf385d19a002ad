// Turns the effective config into the VmSpec a backend boots: the guest image (the project's
// cached one unless the config names its own kernel/initrd), keys handed in at boot, this
// boot's console log.
import { mkdir } from 'node:fs/promises';
import type { Accelerator, VmSpec } from './backend.js';
import type { DaemonConfig, GuestAslrSetting } from './config/schema.js';
import { GUEST_FILES } from './image/guest-contract.js';
import type { ImageBuildProgress } from './image/build-progress.js';
import type { KernelFormat } from './image/debian/kernel-form.js';
import { ensureGuestImage } from './image/guest-image.js';
import { debianSettingsForHost } from './image/image-settings.js';
import type { BuilderKeys } from './keys/builder-keys.js';
import { latestConsoleLog, newConsoleLog } from './state/console-logs.js';
import { ensureStoreDisk, storeDiskPath } from './state/store-disk.js';
import { guestForwardPort } from './on-demand/guest-forward-port.js';

export interface VmSpecContext {
  stateDir: string;
  consoleDir: string;
  imageCacheDir: string;
  keys: BuilderKeys;
  accel: Accelerator;
  /** The kernel form the backend loads; the image's default (QEMU's) when absent. */
  kernelForm?: KernelFormat;
  log?: (msg: string) => void;
}

let bootSeq = 0;

/**
 * Whether the guest randomizes its address space. auto turns it off under tcg only: QEMU keeps
 * a program's translated code by its addresses, so a program that lands elsewhere at every exec
 * is translated again each time (`nc` started in 31 ms instead of 7, `nix-store --version` in
 * 431 ms instead of 178; docs/guest-image.md). With hvf and kvm the guest's code runs as it is.
 */
export function guestAslr(setting: GuestAslrSetting, accel: Accelerator): boolean {
  if (setting === 'auto') return accel !== 'tcg';
  return setting === 'on';
}

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
    if (!kernel) kernel = ctx.kernelForm ? image.kernels[ctx.kernelForm] : image.kernel;
    if (!kernel) {
      throw new Error(
        `the ${config.arch} guest image ${image.hash} has no ${ctx.kernelForm} kernel (it has ${Object.keys(image.kernels).join(', ')})`,
      );
    }
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
    // Adoption only cleans up after a VM that is gone: the disk is named, never made or replaced.
    disk: opts.adopting
      ? config.diskGiB > 0
        ? storeDiskPath(ctx.stateDir)
        : undefined
      : await ensureStoreDisk(ctx.stateDir, config.diskGiB, { ephemeral: config.ephemeral }),
    guestFiles: {
      [GUEST_FILES.authorizedKeys]: ctx.keys.clientPublicKey,
      [GUEST_FILES.hostKey]: ctx.keys.hostKey,
    },
    aslr: guestAslr(config.guestAslr, ctx.accel),
  };
}
