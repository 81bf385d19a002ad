// What the API (and anything else outside the supervisor) may ask of the running daemon.
// The supervisor implements it; the API's handlers hold no logic of their own.
import type { EventEmitter } from 'node:events';
import type { Accelerator, BackendName, GuestArch } from './backend.js';
import type { ImageBuildStatus } from './supervisor/image-progress.js';

export const BUILDER_STATES = [
  'stopped',
  'starting',
  'running',
  'degraded',
  'stopping',
  'backoff',
  'failed',
] as const;
export type BuilderState = (typeof BUILDER_STATES)[number];

export type DesiredState = 'running' | 'stopped';

/** On-demand mode as status shows it (daemon/on-demand/). */
export interface OnDemandStatus {
  /** Wanted now: woken by a connection or a start request, until the idle stop. */
  awake: boolean;
  wokenBy: string | null;
  wokenAt: string | null;
  /** Connections waiting for the VM to be ready. */
  heldConnections: number;
  /** Connections forwarded to the guest (running builds keep it up). */
  openConnections: number;
  lastActivityAt: string | null;
  /** Awake with no connection: when the VM is powered off. */
  idleStopAt: string | null;
  idleStopAfterMs: number;
  /** The last time held connections were closed without reaching the guest, and why. */
  lastFailure: { at: string; reason: string; connections: number } | null;
}

export interface DaemonStatus {
  state: BuilderState;
  healthy: boolean;
  desired: DesiredState;
  /** always: the VM runs while desired; on-demand: it starts on the first connection and stops when idle. */
  mode: 'always' | 'on-demand';
  onDemand: OnDemandStatus | null;
  backend: BackendName;
  /** Why this backend and accelerator were chosen (choose-backend.ts), e.g. why tcg is a fallback. */
  backendReason: string;
  accel: Accelerator;
  arch: GuestArch;
  vm: {
    pid: number | null;
    startedAt: string | null;
    adopted: boolean;
    /** When this VM first answered a Nix probe (for an adopted VM: its first probe by this daemon). */
    readyAt: string | null;
    /** From the VM process's start to readyAt: the boot's time to ready; null for an adopted VM. */
    bootToReadyMs: number | null;
  };
  restarts: number;
  lastExit: { code: number | null; signal: string | null; reason: string; at: string } | null;
  probe: {
    ok: boolean;
    /** Which check the latest result came from: `nix` (Nix over SSH) or `ssh` (a request on the kept SSH connection). */
    check: 'nix' | 'ssh' | null;
    /** The latest successful Nix probe's round trip, from the SSH banner on: never the wait for a boot. */
    latencyMs: number | null;
    /** The latest successful SSH check's round trip (a request on the kept SSH connection). */
    sshLatencyMs: number | null;
    nixVersion: string | null;
    at: string | null;
    /** When Nix last answered. */
    nixAt: string | null;
    error: string | null;
  };
  ssh: { host: '127.0.0.1'; port: number };
  /** When in backoff: when the next start is due. When failed: why. */
  backoff: { attempt: number; nextStartAt: string | null } | null;
  failedReason: string | null;
  configPath: string;
  stateDir: string;
  /** Current problems: an invalid config edit (naming the key), a registration file the daemon cannot or will not repair, a failed guest GC or clock fix. Repairs themselves are events. */
  errors: Array<{ source: string; message: string; at: string }>;
  /** The guest image build of the start in progress (a first start, a Debian update); null otherwise. */
  image: ImageBuildStatus | null;
  daemon: { pid: number; version: string; startedAt: string };
}

export interface StateEvent {
  at: string;
  type:
    | 'state'
    | 'exit'
    | 'probe'
    | 'config'
    | 'adopted'
    | 'error'
    | 'repair'
    | 'image'
    | 'wake'
    | 'idle-stop'
    | 'wake-failed'
    | 'accel-fallback'
    | 'disk-reset';
  state?: BuilderState;
  from?: BuilderState;
  message: string;
  [key: string]: unknown;
}

/** What `linuxkitctl disk reset` did: the next boot formats a new store disk. */
export interface DiskResetResult {
  /** The store disk's path (<state dir>/nix-disk.raw). */
  path: string;
  /** The size of the disk that was removed, in bytes; null when there was none. */
  removedBytes: number | null;
  status: DaemonStatus;
}

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

export interface DaemonController {
  status(): DaemonStatus;
  /** Each of these returns the status right after the request was accepted. */
  start(): Promise<DaemonStatus>;
  stop(): Promise<DaemonStatus>;
  restart(): Promise<DaemonStatus>;
  /** Removes the store disk; refused (ConflictError) unless the builder is stopped or failed. */
  resetDisk(): Promise<DiskResetResult>;
  /** Last `lines` lines of the guest console (current boot) or the daemon's own log. */
  logs(source: 'console' | 'daemon', lines: number): Promise<string[]>;
  /** Emits 'event' with a StateEvent for every transition; the API streams them. */
  readonly events: EventEmitter;
}
