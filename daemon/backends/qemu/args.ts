// The QEMU command line as a pure function of the VM spec, so a golden test can pin it.
import { join } from 'node:path';
import type { VmSpec } from '../../backend.js';
import { GUEST_DISK_DEVICE, guestKernelCmdline } from '../../image/guest-contract.js';
import { checkSocketPathLength, checkVmSize, requireAbsolutePath } from '../common/spec-checks.js';

export interface QemuCommand {
  executable: string;
  /** Arguments after argv[0]. */
  argv: string[];
}

export interface QemuArgsOptions {
  /** QEMU binary to run; defaults to `qemu-system-<arch>` looked up on PATH. */
  qemuBinary?: string;
  /** Host platform whose Unix socket path limit applies; defaults to the running one. */
  platform?: NodeJS.Platform;
  /** x86_64: the firmware to boot through (-bios, see firmware.ts); none: QEMU's default. */
  firmware?: string | null;
}

export interface QemuPaths {
  qmpSocket: string;
  pidFile: string;
  stderrLog: string;
}

export function qemuPaths(stateDir: string): QemuPaths {
  return {
    qmpSocket: join(stateDir, 'qmp.sock'),
    pidFile: join(stateDir, 'qemu.pid'),
    stderrLog: join(stateDir, 'qemu.stderr.log'),
  };
}

/** QEMU's option parser splits on commas; a literal comma inside a value is written twice. */
export function escapeQemuOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

const FW_CFG_NAME = /^[A-Za-z0-9._/-]+$/;
// QEMU caps fw_cfg file names at 56 bytes including "opt/" and the NUL.
const FW_CFG_NAME_MAX = 55 - 'opt/'.length;

export function buildQemuArgs(spec: VmSpec, opts: QemuArgsOptions = {}): QemuCommand {
  validateSpec(spec, opts.platform ?? process.platform);
  if (opts.firmware) requireAbsolutePath('firmware', opts.firmware);
  const paths = qemuPaths(spec.stateDir);
  const esc = escapeQemuOptionValue;
  const x86 = spec.arch === 'x86_64';

  // Plain `virt` on every aarch64 host: `highmem=off` caps the guest at 3 GiB on QEMU >= 7.0
  // ("Addressing limited to 32 bits"), and this backend refuses older QEMUs (version.ts).
  const machine = x86 ? 'q35' : 'virt';
  const cpu = qemuCpuModel(spec.arch, spec.accel);
  const cmdline = guestKernelCmdline(spec.cmdline, {
    ...(spec.disk === undefined ? {} : { disk: GUEST_DISK_DEVICE }),
    aslr: spec.aslr,
  });

  // biome-ignore format: option and value pairs, one per line, read as the command line
  const argv: string[] = [
    '-machine', machine,
    '-accel', spec.accel,
    '-cpu', cpu,
    '-smp', String(spec.cpus),
    '-m', String(spec.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    // A guest reboot or panic ends QEMU; the daemon decides whether to start it again.
    '-no-reboot',
    '-name', 'linuxkit-builder',
  ];
  if (x86 && opts.firmware) argv.push('-bios', opts.firmware);
  // -bios, -kernel, -initrd, -append, -pidfile and -serial file: take their value literally.
  argv.push('-kernel', spec.kernel);
  if (spec.initrd !== '') argv.push('-initrd', spec.initrd);
  // biome-ignore format: option and value pairs, one per line, read as the command line
  argv.push(
    '-append', cmdline,
    // 127.0.0.1 always: an empty host address would expose the builder's SSH on every interface.
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${spec.sshPort}-:22`,
    '-device', 'virtio-net-pci,netdev=n0',
    '-device', 'virtio-rng-pci',
    // Memory the guest frees (a build's tmpfs, its processes) goes back to the host within seconds.
    '-device', 'virtio-balloon-pci,free-page-reporting=on',
    // Lets a guest that loads the pvpanic driver report a panic as such, not as a reboot.
    '-device', x86 ? 'pvpanic' : 'pvpanic-pci',
    '-qmp', `unix:${esc(paths.qmpSocket)},server=on,wait=off`,
    '-serial', `file:${spec.consoleLog}`,
    '-pidfile', paths.pidFile,
  );
  for (const name of Object.keys(spec.guestFiles).sort()) {
    argv.push('-fw_cfg', `name=opt/${name},file=${esc(spec.guestFiles[name])}`);
  }
  if (spec.disk !== undefined) {
    argv.push('-drive', `file=${esc(spec.disk)},if=virtio,format=raw`);
  }
  return { executable: opts.qemuBinary ?? `qemu-system-${spec.arch}`, argv };
}

/**
 * The `-cpu` model for a guest architecture under an accelerator. hvf exists only on macOS, so
 * the accelerator tells the host: hvf + x86_64 is an Intel Mac, hvf + aarch64 Apple Silicon.
 */
export function qemuCpuModel(arch: VmSpec['arch'], accel: VmSpec['accel']): string {
  if (accel === 'tcg') {
    // Under tcg an arm64 `-cpu max` emulates pointer authentication with the architected QARMA
    // cipher, which Debian's kernel and userland exercise on every call and return: the
    // implementation-defined algorithm QEMU offers instead boots the aarch64 guest to SSH 3x
    // faster (measured: 24-30 s → 7.6-8 s on a 2-core x86_64 host).
    return arch === 'x86_64' ? 'max' : 'max,pauth-impdef=on';
  }
  // Intel Mac: guests crash with 1 GiB pages and AVX-512 passed through hvf (lima #1485).
  if (accel === 'hvf' && arch === 'x86_64') return 'host,-pdpe1gb,-avx512vl';
  // kvm, and Apple Silicon: with hvf, QEMU >= 9.2.3 hides the M4's SME, which made `host`
  // (and `max`, the same CPU under hvf) abort before (QEMU #2665); version.ts requires it.
  return 'host';
}

function validateSpec(spec: VmSpec, platform: NodeJS.Platform): void {
  if (spec.arch !== 'x86_64' && spec.arch !== 'aarch64') {
    throw new Error(`arch must be "x86_64" or "aarch64", got ${JSON.stringify(spec.arch)}`);
  }
  if (spec.accel !== 'tcg' && spec.accel !== 'kvm' && spec.accel !== 'hvf') {
    throw new Error(`accel must be "hvf", "kvm" or "tcg", got ${JSON.stringify(spec.accel)}`);
  }
  checkVmSize(spec);
  requireAbsolutePath('kernel', spec.kernel);
  if (spec.initrd !== '') requireAbsolutePath('initrd', spec.initrd);
  requireAbsolutePath('stateDir', spec.stateDir);
  requireAbsolutePath('consoleLog', spec.consoleLog);
  if (spec.disk !== undefined) requireAbsolutePath('disk', spec.disk);
  if (typeof spec.cmdline !== 'string' || spec.cmdline.includes('\n')) {
    throw new Error('cmdline must be a single-line string');
  }
  for (const [name, file] of Object.entries(spec.guestFiles)) {
    if (!FW_CFG_NAME.test(name) || name.length > FW_CFG_NAME_MAX) {
      throw new Error(
        `guestFiles name ${JSON.stringify(name)} must be 1..${FW_CFG_NAME_MAX} characters of [A-Za-z0-9._/-]`,
      );
    }
    requireAbsolutePath(`guestFiles[${JSON.stringify(name)}]`, file);
  }
  checkSocketPathLength(qemuPaths(spec.stateDir).qmpSocket, platform);
}
