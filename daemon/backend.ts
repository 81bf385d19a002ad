// The seam between the reconciler and each hypervisor. The reconciler only ever sees these
// types; each backend lives in its own folder under backends/ and is listed in
// backends/registry.ts, which is the only place that knows which backends exist.

/** A backend's name as its descriptor in backends/registry.ts gives it. */
export type BackendName = string;
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
  /** false: no address-space layout randomization in the guest (`norandmaps`). Absent: on. */
  aslr?: boolean;
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
  /** The state directory the VM's files live in: enough, with the rest, to adopt it. */
  stateDir: string;
  /** The console log this boot writes to (an adopted VM keeps writing there). */
  consoleLog: string;
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

export interface StopOptions {
  /** How long the guest gets to power off through ACPI before harder means. */
  graceMs: number;
}

/**
 * The contract every backend keeps (docs/backends.md, "The Backend contract"):
 * - a live VM in the state directory at `prepare` or `start` is refused, never adopted there:
 *   adoption goes through `adopt(record)` only, so a VM booted with another spec (other keys,
 *   memory, image) is never taken for this one; the error names its pid;
 * - the VM's life is observed through `VmHandle.exited` (the process's end), not by polling: there
 *   is no `inspect`, and readiness is the probe's job;
 * - `detach` is awaited: it has released what this daemon holds (QMP connection, SSH listener)
 *   when it resolves, so the next daemon can adopt at once.
 */
export interface Backend {
  readonly name: BackendName;
  /** Removes stale files (pid, QMP, sockets) left by a VM that is no longer running; refuses a live one. */
  prepare(spec: VmSpec): Promise<void>;
  /** Resolves once the hypervisor process is running; readiness is the probe's job. Refuses a live VM. */
  start(spec: VmSpec): Promise<VmHandle>;
  /**
   * A handle on a VM from an earlier daemon if `record` (of this backend) still matches a live
   * process; null otherwise. Needs nothing but the record: no spec, no image.
   */
  adopt(record: VmRecord): Promise<VmHandle | null>;
  /** ACPI power-down, bounded wait, then harder means; resolves with the exit. */
  stop(handle: VmHandle, opts: StopOptions): Promise<VmExit>;
  /**
   * Optional: stops watching a VM without stopping it, when the daemon exits and leaves it for
   * the next daemon to adopt (e.g. QEMU's QMP socket serves one client at a time). Its
   * `exited` may then never settle.
   */
  detach?(handle: VmHandle): Promise<void>;
}
