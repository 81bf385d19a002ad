// The firmware an x86_64 guest boots through. QEMU's default, SeaBIOS, runs for 0.1–0.5 s under
// tcg before the kernel does (the first console byte 440–830 ms after QEMU starts, against
// 345–380 ms); qboot, the minimal firmware QEMU ships beside it for booting a Linux kernel
// directly (the image's PVH vmlinux), skips what a direct kernel boot never uses: option ROMs,
// boot menus, disk probing. Under kvm and hvf the firmware's cost is small, and qboot has not been
// verified there, so they keep SeaBIOS.
//
// QEMU finds its firmware in its data directory, <prefix>/share/qemu beside <prefix>/bin, whether
// installed by apt, Homebrew (in its Cellar), MacPorts or Nix; a QEMU without qboot there (a
// build that left it out) keeps its default.
import { constants } from 'node:fs';
import { access, realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { VmSpec } from '../../backend.js';
import { locateOnPath } from './locate.js';

export const QBOOT_FILE = 'qboot.rom';

/** Whether this guest boots through qboot when the QEMU has it. */
export function wantsQboot(spec: Pick<VmSpec, 'arch' | 'accel'>): boolean {
  return spec.arch === 'x86_64' && spec.accel === 'tcg';
}

/** The data directory of the QEMU whose executable (symlinks resolved) is `realExecutable`. */
export function qemuDataDir(realExecutable: string): string {
  return join(dirname(dirname(realExecutable)), 'share', 'qemu');
}

/** The qboot of the QEMU `spawn` runs for `qemu`, or null when that QEMU has none. */
export async function findQboot(qemu: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const executable = await locateOnPath(qemu, env);
  if (executable === null) return null;
  try {
    const file = join(qemuDataDir(await realpath(executable)), QBOOT_FILE);
    await access(file, constants.R_OK);
    return file;
  } catch {
    return null;
  }
}

/** The firmware file for `spec` (-bios), or null for QEMU's default. */
export async function firmwareFor(
  spec: Pick<VmSpec, 'arch' | 'accel'>,
  qemu: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | null> {
  return wantsQboot(spec) ? findQboot(qemu, env) : null;
}
