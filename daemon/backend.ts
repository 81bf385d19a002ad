// The seam between the reconciler and each hypervisor. The reconciler only ever sees these
// types; each backend (backends/qemu, backends/hyperkit) lives in its own folder.

export type BackendName = 'qemu' | 'hyperkit';
export type Accelerator = 'hvf' | 'kvm' | 'tcg';
export type GuestArch = 'x86_64' | 'aarch64';

/** Everything needed to boot one builder VM. Paths are absolute. */
export interface VmSpec {
  arch: GuestArch;
  accel: Accelerator;
  cpus: number;
  memoryMiB: number;
  /** Guest kernel, initrd and kernel command line (from the guest image). */
  kernel: string;
  initrd: string;
  cmdline: string;
  /** Host TCP port on 127.0.0.1 forwarded to the guest's SSH port 22. */
  sshPort: number;
  /** The daemon's state directory: QMP socket, pid file, console logs live here. */
  stateDir: string;
  /** Where this boot's serial console goes (a file in the state directory). */
  consoleLog: string;
  /** Files handed to the guest at boot (QEMU fw_cfg `opt/<name>`), e.g. keys. */
  guestFiles: Record<string, string>;
  /** Optional persistent disk for the guest's /nix (raw image); absent means store in RAM. */
  disk?: string;
}

/** How a VM process ended. */
export interface VmExit {
  /** Exit code, or null when killed by a signal or when unknown (an adopted VM). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Plain words: "guest powered off", "killed by SIGKILL", "exited with code 1". */
  reason: string;
  /** A guest reboot the backend cannot perform itself: restart at once, not a crash. */
  reboot?: boolean;
  /** ISO time of the exit as observed. */
  at: string;
}

/** What the daemon writes to `<state>/vm.json` so a later daemon can adopt the VM. */
export interface VmRecord {
  backend: BackendName;
  pid: number;
  /** Absolute path of the running executable (as the OS reports it). */
  executable: string;
  argv: string[];
  /** OS start time of the process (Linux: /proc/<pid>/stat field 22; macOS: ps lstart). */
  processStartTime: string;
  /** ISO time the daemon started it. */
  startedAt: string;
  sshPort: number;
  /** Backend-specific extras (QMP socket path, vpnkit pid, ...). */
  extra?: Record<string, unknown>;
}

export interface VmHandle {
  readonly pid: number;
  readonly startedAt: string;
  readonly record: VmRecord;
  /** Settles once when the VM process is gone; never rejects. */
  readonly exited: Promise<VmExit>;
}

export interface VmInspection {
  /** The process exists and is the one recorded. */
  alive: boolean;
  /** Hypervisor's own view, e.g. QMP status "running", "paused", "shutdown". */
  status?: string;
}

export interface StopOptions {
  /** How long the guest gets to power off through ACPI before harder means. */
  graceMs: number;
}

export interface Backend {
  readonly name: BackendName;
  /** Removes stale files (pid, QMP, sockets) left by a VM that is no longer running. */
  prepare(spec: VmSpec): Promise<void>;
  /** Resolves once the hypervisor process is running; readiness is the probe's job. */
  start(spec: VmSpec): Promise<VmHandle>;
  /** Returns a handle on a VM from an earlier daemon if `record` still matches a live process. */
  adopt(record: VmRecord, spec: VmSpec): Promise<VmHandle | null>;
  inspect(handle: VmHandle): Promise<VmInspection>;
  /** ACPI power-down, bounded wait, then harder means; resolves with the exit. */
  stop(handle: VmHandle, opts: StopOptions): Promise<VmExit>;
  /**
   * Optional: stop watching a VM without stopping it, when the daemon exits and leaves it for the
   * next daemon to adopt (e.g. QEMU's QMP socket serves one client at a time).
   */
  detach?(handle: VmHandle): void;
}
