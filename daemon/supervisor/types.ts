// What the supervisor needs from the rest of the daemon. Everything is injected so tests can
// hand it a fake backend, probe, store and clock; main.ts wires the real ones.
import type { ImageBuildProgress } from '../image/build-progress.js';
import type { Accelerator, Backend, BackendName, GuestArch, VmRecord, VmSpec } from '../backend.js';
import type { DesiredState } from '../controller.js';
import type { Policy, ProbeCheck, StepMemory } from '../reconciler/types.js';
import type { ConnectionCounts, DemandSettings } from '../on-demand/demand.js';

/** setTimeout and friends, injectable so tests drive time by hand. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** The static facts the status reports. Read on each status() call, so it may change. */
export interface SupervisorInfo {
  backend: BackendName;
  backendReason: string;
  accel: Accelerator;
  arch: GuestArch;
  sshPort: number;
  configPath: string;
  stateDir: string;
  version: string;
}

export interface SupervisorStore {
  loadDesired(): Promise<DesiredState | null>;
  saveDesired(d: DesiredState): Promise<void>;
  loadRecord(): Promise<VmRecord | null>;
  /** null deletes the record. */
  saveRecord(r: VmRecord | null): Promise<void>;
  /** null when there is none yet; throws (naming the file and field) when it is unreadable. */
  loadMemory(): Promise<StepMemory | null>;
  saveMemory(m: StepMemory): Promise<void>;
}

/** The subset of pino the supervisor uses. */
export interface SupervisorLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The daemon's SSH endpoint as the supervisor drives it (on-demand/ssh-endpoint.ts). */
export interface DemandEndpoint {
  counts(): ConnectionCounts;
  /** The guest answers on this forwarded port (null: not ready); held connections go through. */
  ready(port: number | null): void;
  /** Closes the held connections; returns how many there were. */
  failHeld(reason: string): number;
}

export interface SupervisorDeps {
  backend: Backend;
  /**
   * Resolves the image and picks this boot's console log. `bootId` is unique per start and safe
   * as a file name; `adopting` is true when the spec is only needed to adopt a VM that already
   * runs (no new console log is wanted then). `signal`, when given, aborts once the start that
   * asked for the spec is cancelled; a builder may stop early on it. `onImageProgress`: the guest
   * image build's progress, when the spec needs one built.
   */
  buildSpec(
    bootId: string,
    opts: { adopting: boolean; signal?: AbortSignal; onImageProgress?: (p: ImageBuildProgress) => void },
  ): Promise<VmSpec>;
  /**
   * `nix`: resolves when Nix answers over SSH (waiting for the SSH server at a fine interval first);
   * `ssh`: when the SSH server sends its banner. Throws with a clear message when it does not.
   * `latencyMs` is the check's own round trip, never the wait for a booting guest.
   */
  probe(check: ProbeCheck): Promise<{ latencyMs: number; nixVersion: string | null }>;
  store: SupervisorStore;
  /** Read at each step, so config edits apply live. */
  policy(): Policy;
  info(): SupervisorInfo;
  logs(source: 'console' | 'daemon', lines: number): Promise<string[]>;
  log: SupervisorLog;
  clock?: Clock;
  /** In [0, 1); for the backoff jitter. */
  random?: () => number;
  /** Mode and idle time; absent means always on. */
  demand?: () => DemandSettings;
  /** Removes the store disk (`linuxkitctl disk reset`); default: <info().stateDir>/nix-disk.raw. */
  resetStoreDisk?: () => Promise<{ path: string; removedBytes: number | null }>;
  /** Reported as status.daemon.pid; defaults to process.pid. */
  pid?: number;
}
