// The status the API serves, as a pure function of what the supervisor holds, so its fields
// are tested without a loop.
import type { VmExit, VmHandle } from '../backend.js';
import type { DaemonStatus, DesiredState, OnDemandStatus } from '../controller.js';
import type { ConnectionCounts, DemandSettings, Wake } from '../on-demand/demand.js';
import type { ObservedProbe, ProbeCheck, StepMemory } from '../reconciler/types.js';
import type { ImageBuildStatus } from './image-progress.js';
import type { SupervisorInfo } from './types.js';

export interface ProbeView extends Omit<ObservedProbe, 'inFlight'> {
  /** Which check the latest result came from; null before the first. */
  check: ProbeCheck | null;
  /** The latest successful Nix probe's round trip, from the SSH server's banner to Nix's answer. */
  latencyMs: number | null;
  /** The latest successful SSH check's round trip: a request on the kept SSH connection and its answer. */
  sshLatencyMs: number | null;
  nixVersion: string | null;
  /** When this VM process first answered a Nix probe: ready for builds. */
  readyAt: number | null;
}

export const NO_PROBE: ProbeView = {
  ok: false,
  check: null,
  at: null,
  firstFailureAt: null,
  lastOkAt: null,
  lastNixOkAt: null,
  error: null,
  latencyMs: null,
  sshLatencyMs: null,
  nixVersion: null,
  readyAt: null,
};

/** One probe's result as the worker reports it; `latencyMs` is that check's own round trip. */
export interface ProbeOutcome {
  check: ProbeCheck;
  ok: boolean;
  latencyMs: number | null;
  nixVersion: string | null;
  error: string | null;
}

/** The probe view after one more result: keeps the start of a failing run and the last success. */
export function nextProbeView(before: ProbeView, r: ProbeOutcome, now: number): ProbeView {
  const failingSince = before.ok || before.at === null ? now : (before.firstFailureAt ?? now);
  const nixOk = r.ok && r.check === 'nix';
  return {
    ok: r.ok,
    check: r.check,
    error: r.error,
    at: now,
    firstFailureAt: r.ok ? null : failingSince,
    lastOkAt: r.ok ? now : before.lastOkAt,
    lastNixOkAt: nixOk ? now : before.lastNixOkAt,
    latencyMs: nixOk ? r.latencyMs : before.latencyMs,
    sshLatencyMs: r.ok && r.check === 'ssh' ? r.latencyMs : before.sshLatencyMs,
    nixVersion: r.nixVersion ?? before.nixVersion,
    readyAt: before.readyAt ?? (nixOk ? now : null),
  };
}

export interface StatusView {
  memory: StepMemory;
  desired: DesiredState;
  mode: DaemonStatus['mode'];
  onDemand: OnDemandStatus | null;
  info: SupervisorInfo;
  vm: { handle: VmHandle; adopted: boolean; probe: ProbeView } | null;
  restarts: number;
  lastExit: VmExit | null;
  errors: ReadonlyMap<string, { message: string; at: number }>;
  image: ImageBuildStatus | null;
  daemon: { pid: number; startedAt: number };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** From the VM process's start to its first Nix answer; unknown for a VM this daemon adopted. */
function bootToReadyMs(vm: StatusView['vm']): number | null {
  if (!vm || vm.adopted || vm.probe.readyAt === null) return null;
  const started = Date.parse(vm.handle.startedAt);
  return Number.isFinite(started) ? Math.max(0, vm.probe.readyAt - started) : null;
}

export function renderStatus(v: StatusView): DaemonStatus {
  const h = v.memory;
  const probe = v.vm?.probe ?? NO_PROBE;
  return {
    state: h.state,
    // `running` is the step's verdict on a good probe of the current VM; nothing else is healthy.
    healthy: h.state === 'running',
    desired: v.desired,
    mode: v.mode,
    onDemand: v.onDemand,
    backend: v.info.backend,
    backendReason: v.info.backendReason,
    accel: v.info.accel,
    arch: v.info.arch,
    vm: {
      pid: v.vm?.handle.pid ?? null,
      startedAt: v.vm?.handle.startedAt ?? null,
      adopted: v.vm?.adopted ?? false,
      readyAt: iso(probe.readyAt),
      bootToReadyMs: bootToReadyMs(v.vm),
    },
    restarts: v.restarts,
    lastExit: v.lastExit
      ? { code: v.lastExit.code, signal: v.lastExit.signal, reason: v.lastExit.reason, at: v.lastExit.at }
      : null,
    probe: {
      ok: probe.ok,
      check: probe.check,
      latencyMs: probe.latencyMs,
      sshLatencyMs: probe.sshLatencyMs,
      nixVersion: probe.nixVersion,
      at: iso(probe.at),
      nixAt: iso(probe.lastNixOkAt),
      error: probe.error,
    },
    ssh: { host: '127.0.0.1', port: v.info.sshPort },
    backoff:
      h.state === 'backoff'
        ? { attempt: h.consecutiveFailures + 1, nextStartAt: iso(h.backoffUntil) }
        : h.state === 'failed'
          ? { attempt: h.consecutiveFailures, nextStartAt: null }
          : null,
    failedReason: h.state === 'failed' ? h.failedReason : null,
    configPath: v.info.configPath,
    stateDir: v.info.stateDir,
    errors: [...v.errors].map(([source, e]) => ({
      source,
      message: e.message,
      at: new Date(e.at).toISOString(),
    })),
    image: v.image,
    daemon: {
      pid: v.daemon.pid,
      version: v.info.version,
      startedAt: new Date(v.daemon.startedAt).toISOString(),
    },
  };
}

/** On-demand mode's part of the status; null in always mode. */
export function renderOnDemand(v: {
  settings: DemandSettings;
  wake: Wake | null;
  connections: ConnectionCounts;
  idleStopAt: number | null;
  lastFailure: { at: number; reason: string; connections: number } | null;
}): OnDemandStatus | null {
  if (v.settings.mode !== 'on-demand') return null;
  return {
    awake: v.wake !== null,
    wokenBy: v.wake?.by ?? null,
    wokenAt: iso(v.wake?.at ?? null),
    heldConnections: v.connections.held,
    openConnections: v.connections.open,
    lastActivityAt: iso(v.connections.lastActivityAt),
    idleStopAt: iso(v.idleStopAt),
    idleStopAfterMs: v.settings.idleStopAfterMs,
    lastFailure: v.lastFailure && { ...v.lastFailure, at: new Date(v.lastFailure.at).toISOString() },
  };
}
