// The vpnkit and hyperkit command lines as pure functions of the VM spec, so golden tests can
// pin them. hyperkit parses every device option by splitting on commas with no escape, which is
// why paths may hold spaces (each option is one argv element; no shell is involved) but never
// commas.
import { isAbsolute, join } from 'node:path';
import type { VmSpec } from '../../backend.js';
import { GUEST_DISK_DEVICE, guestKernelCmdline } from '../../image/guest-contract.js';
import { checkSocketPathLength, checkVmSize, requireAbsolutePath } from '../common/spec-checks.js';

export interface HyperkitCommand {
  executable: string;
  /** Arguments after argv[0]. */
  argv: string[];
}

/** Everything hyperkit, vpnkit and this backend keep in the state directory. */
export interface HyperkitPaths {
  /** Written by hyperkit (-F, O_CREAT|O_EXCL), removed by it on a normal exit. */
  pidFile: string;
  /** Written by this backend: vpnkit has no pid file of its own. */
  vpnkitPidFile: string;
  /** vpnkit listens here; hyperkit's virtio-vpnkit device connects to it. */
  ethSocket: string;
  /** vpnkit's 9P port-forwarding control socket. */
  portSocket: string;
  /** hyperkit's virtio-sock device listens on `<vsockDir>/connect` for host→guest connections. */
  vsockDir: string;
  connectSocket: string;
  /** The virtio-vpnkit UUID: vpnkit hands the same guest address to the same UUID. */
  uuidFile: string;
  /** hyperkit writes the console pty's path here (autopty). */
  tty: string;
  /** hyperkit's 64 KiB memory-mapped console ring. */
  consoleRing: string;
  /** The initrd actually booted: the image's initrd with the guest files appended. */
  bootInitrd: string;
  hyperkitLog: string;
  vpnkitLog: string;
}

export function hyperkitPaths(stateDir: string): HyperkitPaths {
  return {
    pidFile: join(stateDir, 'hyperkit.pid'),
    vpnkitPidFile: join(stateDir, 'vpnkit.pid'),
    ethSocket: join(stateDir, 'vpnkit_eth.sock'),
    portSocket: join(stateDir, 'vpnkit_port.sock'),
    vsockDir: stateDir,
    connectSocket: join(stateDir, 'connect'),
    uuidFile: join(stateDir, 'vpnkit.uuid'),
    tty: join(stateDir, 'tty'),
    consoleRing: join(stateDir, 'console-ring'),
    bootInitrd: join(stateDir, 'boot-initrd.img'),
    hyperkitLog: join(stateDir, 'hyperkit.log'),
    vpnkitLog: join(stateDir, 'vpnkit.log'),
  };
}

/** The guest's vsock context id (hyperkit's `guest_cid`); the host is 2. */
export const GUEST_CID = 3;

/**
 * Fixed PCI slots, whether or not a disk is attached, so the guest sees the same devices in the
 * same places on every boot.
 */
const SLOT = { hostbridge: '0:0', vpnkit: '1:0', disk: '2:0', vsock: '3', rnd: '4', lpc: '31' } as const;

export interface HyperkitArgsOptions {
  /** The hyperkit binary; defaults to `hyperkit` on PATH. */
  hyperkitBinary?: string;
  /** The UUID kept in `vpnkit.uuid`, so the guest keeps its address across boots. */
  vpnkitUuid: string;
  /** The initrd to boot instead of `spec.initrd` (the copy with the guest files appended). */
  initrd?: string;
  /** Host platform whose Unix socket path limit applies; defaults to the running one. */
  platform?: NodeJS.Platform;
}

export interface VpnkitArgsOptions {
  /** The vpnkit binary; defaults to `vpnkit` on PATH. */
  vpnkitBinary?: string;
  platform?: NodeJS.Platform;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function buildHyperkitArgs(spec: VmSpec, opts: HyperkitArgsOptions): HyperkitCommand {
  validateSpec(spec, opts.platform ?? process.platform);
  if (typeof opts.vpnkitUuid !== 'string' || !UUID.test(opts.vpnkitUuid)) {
    throw new Error(
      `vpnkitUuid must be a UUID like 6e2f0a52-2a43-4f4b-9c0e-0b6f5d3c1a7e, got ${JSON.stringify(opts.vpnkitUuid)}`,
    );
  }
  const initrd = opts.initrd ?? spec.initrd;
  if (opts.initrd !== undefined) requireOptionPath('initrd (boot copy)', opts.initrd);
  // An empty field boots without an initrd (hyperkit treats a zero-length option as absent).
  const p = hyperkitPaths(spec.stateDir);

  // biome-ignore format: option and value pairs, one per line, read as the command line
  const argv: string[] = [
    // ACPI tables: without them SIGTERM cannot become a power-button press.
    '-A',
    // The RTC keeps UTC, which is what the guest expects (-u).
    '-u',
    '-F', p.pidFile,
    '-c', String(spec.cpus),
    '-m', `${spec.memoryMiB}M`,
    '-s', `${SLOT.hostbridge},hostbridge`,
    '-s', `${SLOT.lpc},lpc`,
    '-s', `${SLOT.vpnkit},virtio-vpnkit,path=${p.ethSocket},uuid=${opts.vpnkitUuid.toLowerCase()}`,
  ];
  if (spec.disk !== undefined) argv.push('-s', `${SLOT.disk},virtio-blk,${spec.disk}`);
  // biome-ignore format: option and value pairs, one per line, read as the command line
  argv.push(
    '-s', `${SLOT.vsock},virtio-sock,guest_cid=${GUEST_CID},path=${p.vsockDir}`,
    '-s', `${SLOT.rnd},virtio-rnd`,
    '-l', `com1,autopty=${p.tty},log=${p.consoleRing}`,
    // Everything after the third comma is the kernel command line, copied verbatim (commas and
    // all). No quotes: hyperkit's usage text shows shell quoting, but hyperkit itself would pass
    // quote characters into the kernel's command line, where they join every word into one.
    '-f', `kexec,${spec.kernel},${initrd},${hyperkitCmdline(spec)}`,
  );
  return { executable: opts.hyperkitBinary ?? 'hyperkit', argv };
}

/**
 * What hyperkit needs from the kernel, before the image's own command line:
 * - earlyprintk=serial: a kernel that dies early still leaves a trace in the console ring;
 * - reboot=t: a panic's reboot (the image's panic=-1) becomes a triple fault, hyperkit's exit 3,
 *   which the supervisor backs off from; as a plain reboot (exit 2) it would be restarted at
 *   once, in a loop if the panic comes back.
 */
const HYPERKIT_KERNEL_ARGS = 'earlyprintk=serial reboot=t';

/** The kernel command line hyperkit boots: its own arguments, the image's, the guest's switches. */
export function hyperkitCmdline(spec: Pick<VmSpec, 'cmdline' | 'disk' | 'aslr'>): string {
  // The first virtio-blk disk is GUEST_DISK_DEVICE in the guest, as under QEMU. No fw_cfg, and
  // the host reaches SSH through vsock: the guest's hyperkit way in.
  const guest = guestKernelCmdline(spec.cmdline, {
    ...(spec.disk === undefined ? {} : { disk: GUEST_DISK_DEVICE }),
    ssh: 'vsock',
    aslr: spec.aslr,
  });
  return `${HYPERKIT_KERNEL_ARGS} ${guest}`;
}

export function buildVpnkitArgs(
  spec: Pick<VmSpec, 'stateDir'>,
  opts: VpnkitArgsOptions = {},
): HyperkitCommand {
  requireOptionPath('stateDir', spec.stateDir);
  checkSocketPaths(spec.stateDir, opts.platform ?? process.platform);
  const p = hyperkitPaths(spec.stateDir);
  // Only options every vpnkit release has; vpnkit creates both sockets itself.
  const argv = ['--ethernet', p.ethSocket, '--port', p.portSocket, '--vsock-path', p.connectSocket];
  return { executable: opts.vpnkitBinary ?? 'vpnkit', argv };
}

/**
 * The 18 bytes hyperkit expects first on its `connect` socket: guest CID and port as
 * `%08x.%08x\n`. hyperkit reads them with a single read(2), so they must go in one write.
 */
export function vsockConnectHeader(cid: number, port: number): string {
  for (const [name, v] of [
    ['cid', cid],
    ['port', port],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new Error(`vsock ${name} must be an integer in 0..4294967295, got ${v}`);
    }
  }
  const hex8 = (v: number) => v.toString(16).padStart(8, '0');
  return `${hex8(cid)}.${hex8(port)}\n`;
}

function validateSpec(spec: VmSpec, platform: NodeJS.Platform): void {
  if (spec.arch !== 'x86_64') {
    throw new Error(
      `arch must be "x86_64" with hyperkit (it boots only x86_64 guests), got ${JSON.stringify(spec.arch)}`,
    );
  }
  if (spec.accel !== 'hvf') {
    throw new Error(
      `accel must be "hvf" with hyperkit (it always uses Hypervisor.framework), got ${JSON.stringify(spec.accel)}`,
    );
  }
  checkVmSize(spec);
  requireOptionPath('kernel', spec.kernel);
  if (spec.initrd !== '') requireOptionPath('initrd', spec.initrd);
  requireOptionPath('stateDir', spec.stateDir);
  if (spec.disk !== undefined) requireOptionPath('disk', spec.disk);
  if (typeof spec.consoleLog !== 'string' || !isAbsolute(spec.consoleLog)) {
    throw new Error(`consoleLog must be an absolute path, got ${JSON.stringify(spec.consoleLog)}`);
  }
  if (typeof spec.cmdline !== 'string' || /[\n\r\0]/.test(spec.cmdline)) {
    throw new Error(`cmdline must be a single-line string, got ${JSON.stringify(spec.cmdline)}`);
  }
  if (spec.cmdline.includes('"')) {
    throw new Error(
      `cmdline must not contain double quotes (hyperkit passes them to the kernel verbatim), got ${JSON.stringify(spec.cmdline)}`,
    );
  }
  checkSocketPaths(spec.stateDir, platform);
}

/** A path that goes inside a hyperkit option: absolute, one line (no CR either), and no comma. */
function requireOptionPath(field: string, value: unknown): void {
  requireAbsolutePath(field, value, /[\n\r\0]/);
  if (value.includes(',')) {
    throw new Error(
      `${field} must not contain a comma (hyperkit splits its options on commas), got ${JSON.stringify(value)}`,
    );
  }
}

// hyperkit's virtio-sock device refuses to start unless "<vsockDir>/%08x.%08x" (the socket of a
// guest-to-host port) fits sun_path: one byte longer than vpnkit_port.sock, the longest we bind.
const VSOCK_PORT_SOCKET_NAME = '00000000.00000000';

function checkSocketPaths(stateDir: string, platform: NodeJS.Platform): void {
  checkSocketPathLength(join(hyperkitPaths(stateDir).vsockDir, VSOCK_PORT_SOCKET_NAME), platform);
}
