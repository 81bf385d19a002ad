// The loop around reconcileStep: it owns the timers, the probe schedule, the VM handle and the
// operations in flight, and drives a Backend without knowing which. Each wake-up observes, steps,
// hands the step's actions to workers and schedules the next wake-up. Wake-ups come from the VM's
// exit notification, API calls, config changes, probe results, operations that end and the step's
// own timer. The step never waits: a start (which may build the guest image) and a stop (which
// may wait out its grace) run beside the loop, at most one of each, and come back as
// observations. Wake-ups that arrive during a step fold into one more step, so a missed or merged
// event only costs latency. What the step remembers is saved after every step that changes it
// and read back at init. What each API request does, and when it is refused, is in requests.ts.
// In on-demand mode a connection to the daemon's SSH endpoint wakes the builder and the idle time
// puts it back to sleep (on-demand/demand.ts decides; the step sees `asleep` as its desired state).
import type { VmExit, VmHandle, VmRecord } from '../backend.js';
import { ConflictError } from '../controller.js';
import type { DaemonController, DaemonStatus, DesiredState, DiskResetResult } from '../controller.js';
import { decideDemand, type DemandSettings, type Wake } from '../on-demand/demand.js';
import { reconcileStep } from '../reconciler/reconcile-step.js';
import { freshStepMemory, resumeStepMemory } from '../reconciler/types.js';
import type { Action, Observed, ObservedExit, Policy, ProbeCheck, StepMemory } from '../reconciler/types.js';
import { Announcer, type EventInput } from './announcer.js';
import { planDiskReset, planRequest, type Request, type RequestContext } from './requests.js';
import { formatGiB, resetStoreDisk } from '../state/store-disk.js';
import { attempt, messageOf, SavedState } from './saved-state.js';
import { ImageProgress } from './image-progress.js';
import { StartOperation, type StartOutcome } from './start-operation.js';
import {
  NO_PROBE,
  nextProbeView,
  renderOnDemand,
  renderStatus,
  type ProbeOutcome,
  type ProbeView,
} from './status.js';
import { systemClock, type Clock, type DemandEndpoint, type SupervisorDeps } from './types.js';
import { waitForStatus } from './wait-for-status.js';
import { WakeLoop } from './wake-loop.js';

interface Vm {
  handle: VmHandle;
  adopted: boolean;
  startedAtMs: number;
  /** The config generation the VM was built from; older than the current one means outdated. */
  configGen: number;
  restartRequested: boolean;
  /** The stop operation in flight; settles after the exit (or the failure) is taken in. */
  stopping: Promise<void> | null;
  /** The last stop of this VM failed: the step waits before it asks again. */
  stopFailure: { at: number; error: string } | null;
  probe: ProbeView;
  probing: Promise<void> | null;
}

/** After an unexpected error in a step, look again no sooner than this. */
const STEP_ERROR_RETRY_MS = 1000;

const ALWAYS: DemandSettings = { mode: 'always', idleStopAfterMs: 0 };

export class Supervisor implements DaemonController {
  readonly events: Announcer['events'];
  private readonly announcer: Announcer;
  private readonly imageProgress: ImageProgress;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly startedAt: number;

  private desired: DesiredState = 'running';
  private memory: StepMemory;
  private vm: Vm | null = null;
  private startOp: StartOperation | null = null;
  private restarts = 0;
  private lastExit: VmExit | null = null;
  private bootSeq = 0;
  private configGen = 0;
  private readonly saved: SavedState;
  private loaded = false;
  /** Until init() has adopted or cleared the recorded VM, wake-ups only queue. */
  private initialized = false;

  // Inputs for the next step, consumed by it.
  private pendingExit: ObservedExit | null = null;
  private explicitStart = false;
  private configChange: { needsRestart: boolean } | null = null;

  // On-demand mode: the wake-up in effect (null: asleep), the endpoint, and what status shows.
  private wake: Wake | null = null;
  private endpoint: DemandEndpoint | null = null;
  private idleStopAt: number | null = null;
  private lastDemandFailure: { at: number; reason: string; connections: number } | null = null;

  private readonly loop: WakeLoop<DaemonStatus>;

  constructor(private readonly deps: SupervisorDeps) {
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
    this.startedAt = this.clock.now();
    this.memory = freshStepMemory(this.startedAt);
    this.loop = new WakeLoop(this.clock, () => this.stepOnce());
    this.saved = new SavedState(deps.store, deps.log);
    this.announcer = new Announcer(this.clock, deps.log);
    this.events = this.announcer.events;
    this.imageProgress = new ImageProgress(
      () => this.clock.now(),
      (p) =>
        this.emit({
          type: 'image',
          message: p.message,
          phase: p.phase,
          packages: p.packages,
          bytes: p.bytes,
        }),
    );
  }

  /**
   * Reads the desired state and the step memory, so that status answers from them (a builder that
   * was `failed` says so before anything else happens). Call before the API listens; init() calls
   * it when it was not.
   */
  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    this.desired = await this.saved.loadDesired();
    const { memory, resumed } = await this.saved.loadMemory(this.memory);
    this.memory = resumed ? resumeStepMemory(memory) : memory;
    if (!resumed) return;
    const exit = memory.lastExit;
    if (exit) {
      const signal = exit.signal as NodeJS.Signals | null;
      this.lastExit = { code: exit.code, signal, reason: exit.reason, at: new Date(exit.at).toISOString() };
    }
    this.deps.log.info(
      { state: memory.state, failures: memory.consecutiveFailures },
      'resuming from the saved step memory',
    );
  }

  /** Loads (if not yet), adopts a VM left by an earlier daemon, and runs the first step. */
  async init(): Promise<void> {
    await this.load();
    const record = await this.saved.loadRecord();
    if (record) await this.adoptOrClear(record);
    this.initialized = true;
    await this.loop.wake();
  }

  status(): DaemonStatus {
    const settings = this.demandSettings();
    return renderStatus({
      memory: this.memory,
      desired: this.desired,
      mode: settings.mode,
      onDemand: renderOnDemand({
        settings,
        wake: this.wake,
        connections: this.endpoint?.counts() ?? { held: 0, open: 0, lastActivityAt: null },
        idleStopAt: this.idleStopAt,
        lastFailure: this.lastDemandFailure,
      }),
      info: this.deps.info(),
      vm: this.vm,
      restarts: this.restarts,
      lastExit: this.lastExit,
      errors: this.announcer.errors,
      image: this.imageProgress.snapshot,
      daemon: { pid: this.deps.pid ?? process.pid, startedAt: this.startedAt },
    });
  }

  start(): Promise<DaemonStatus> {
    return this.request('start');
  }

  stop(): Promise<DaemonStatus> {
    return this.request('stop');
  }

  restart(): Promise<DaemonStatus> {
    return this.request('restart');
  }

  /**
   * Starts the store over: the disk file goes, the next boot formats a new one. The removal is one
   * unlink, done before any start that comes after it could reach the disk (a start builds or
   * checks the guest image first).
   */
  async resetDisk(): Promise<DiskResetResult> {
    const plan = planDiskReset(this.requestContext());
    if (!plan.ok) throw new ConflictError(plan.conflict);
    const reset = this.deps.resetStoreDisk ?? (() => resetStoreDisk(this.deps.info().stateDir));
    const { path, removedBytes } = await reset();
    const message =
      removedBytes === null
        ? `no store disk at ${path}: nothing to reset`
        : `removed the store disk ${path} (${formatGiB(removedBytes)} GiB): the next boot formats a new one`;
    this.emit({ type: 'disk-reset', message, path, removedBytes });
    this.notify();
    return { path, removedBytes, status: this.status() };
  }

  private requestContext(): RequestContext {
    return {
      state: this.memory.state,
      desired: this.desired,
      vmUp: this.vm !== null,
      startInFlight: this.startOp !== null,
      shuttingDown: this.loop.isClosed,
    };
  }

  private async request(request: Request): Promise<DaemonStatus> {
    const plan = planRequest(request, this.requestContext());
    if (!plan.ok) throw new ConflictError(plan.conflict);
    if (plan.effect === 'explicit-start') this.explicitStart = true;
    if (plan.effect === 'replace-vm' && this.vm) this.vm.restartRequested = true;
    // In on-demand mode a start wakes the builder (the idle time then applies); a stop ends it.
    this.wake = plan.desired === 'running' ? { at: this.clock.now(), by: `a ${request} request` } : null;
    await this.setDesired(plan.desired);
    return (await this.loop.wake()) ?? this.status();
  }

  /** The console log the current VM writes to; null without a VM. */
  currentConsoleLog(): string | null {
    return this.vm?.handle.record.consoleLog ?? null;
  }

  /** The host port forwarded to the current VM's SSH; null without a VM. */
  guestSshPort(): number | null {
    return this.vm?.handle.record.sshPort ?? null;
  }

  /** The SSH endpoint of on-demand mode: the supervisor tells it when the guest is ready. */
  setEndpoint(endpoint: DemandEndpoint): void {
    this.endpoint = endpoint;
    void this.loop.wake();
  }

  /** A connection came to the SSH endpoint: it wakes a sleeping builder. */
  connectionArrived(by: string): void {
    if (this.wake === null && this.desired === 'running' && this.demandSettings().mode === 'on-demand') {
      this.wake = { at: this.clock.now(), by };
      this.emit({ type: 'wake', message: `woken by ${by}`, by });
    }
    void this.loop.wake();
  }

  /** Connections opened or closed: the idle stop moves. */
  connectionsChanged(): void {
    void this.loop.wake();
  }

  /** Held connections were closed without reaching the guest (a failed boot, the wait's limit). */
  heldConnectionsClosed(connections: number, reason: string): void {
    this.lastDemandFailure = { at: this.clock.now(), reason, connections };
    const message = `closed ${connections} waiting connection${connections === 1 ? '' : 's'}: ${reason}`;
    this.deps.log.warn({ connections, reason }, message);
    this.emit({ type: 'wake-failed', message, reason, connections });
    void this.loop.wake();
  }

  logs(source: 'console' | 'daemon', lines: number): Promise<string[]> {
    return this.deps.logs(source, lines);
  }

  /** The config file changed (already validated). Any change retries a failed builder. */
  configChanged(change: { needsRestart: boolean; keys: string[] }): void {
    const keys = change.keys.length ? change.keys.join(', ') : 'no keys';
    this.emit({
      type: 'config',
      message: `config changed (${keys})${change.needsRestart ? '; the VM must be replaced' : ''}`,
      keys: change.keys,
      needsRestart: change.needsRestart,
    });
    if (change.needsRestart) this.configGen++;
    this.configChange = { needsRestart: (this.configChange?.needsRestart ?? false) || change.needsRestart };
    void this.loop.wake();
  }

  /** Lists a current problem in status.errors (an invalid config edit, a registration repair...). */
  reportError(source: string, message: string): void {
    this.announcer.reportError(source, message);
  }

  clearError(source: string): void {
    this.announcer.clearError(source);
  }

  /** Reports something the daemon did on its own (a repair in the guest, of a registration file) as an event and in the log. */
  reportEvent(
    type: 'repair' | 'accel-fallback',
    message: string,
    details: Record<string, unknown> = {},
  ): void {
    this.emit({ ...details, type, message });
  }

  /**
   * For SIGTERM: stops the loop, then powers the VM off (stopVm) or leaves it running with its
   * record kept for the next daemon to adopt.
   */
  async shutdown(opts: { stopVm: boolean }): Promise<void> {
    if (this.loop.isClosed) return;
    await this.loop.close();
    const op = this.startOp;
    if (op) {
      // A start still building its image is abandoned; one spawning the hypervisor is let finish
      // so that its VM is known (and stopped, or left with its record for the next daemon).
      op.cancel();
      if (op.phase === 'launching') await op.done;
    }
    const vm = this.vm;
    if (vm && !opts.stopVm) {
      this.deps.log.info({ pid: vm.handle.pid }, 'leaving the VM running for the next daemon to adopt');
      await this.deps.backend.detach?.(vm.handle);
    } else if (vm) {
      if (!vm.stopping) this.beginStop(vm, 'the daemon is shutting down', this.deps.policy());
      await vm.stopping;
      if (this.vm === vm) this.deps.log.error({ pid: vm.handle.pid }, 'could not stop the VM on shutdown');
    }
    await this.saved.flushed();
  }

  /** Resolves with the status once `pred` holds; rejects after `timeoutMs` on the injected clock. */
  waitForState(pred: (s: DaemonStatus) => boolean, timeoutMs: number): Promise<DaemonStatus> {
    return waitForStatus(() => this.status(), this.announcer.changed, this.clock, pred, timeoutMs);
  }

  // ---- the loop ----

  private async stepOnce(): Promise<void> {
    if (!this.initialized) return;
    let policy: Policy | null = null;
    try {
      policy = this.deps.policy();
      const observed = this.observe();
      this.pendingExit = null;
      this.explicitStart = false;
      this.configChange = null;
      const before = this.memory;
      const now = this.clock.now();
      const settings = this.demandSettings();
      const demand = decideDemand({
        mode: settings.mode,
        desired: this.desired,
        wake: this.wake,
        connections: this.endpoint?.counts() ?? { held: 0, open: 0, lastActivityAt: null },
        now,
        idleStopAfterMs: settings.idleStopAfterMs,
      });
      this.idleStopAt = demand.idleStopAt;
      if (demand.idleStop) {
        const idleMs = settings.idleStopAfterMs;
        this.wake = null;
        this.emit({
          type: 'idle-stop',
          message: `no connection for ${Math.round(idleMs / 1000)} s: powering the builder off until the next one`,
          idleStopAfterMs: idleMs,
        });
      }
      const res = reconcileStep({
        desired: demand.desired,
        observed,
        memory: before,
        now,
        policy,
        random: this.random(),
      });
      this.memory = res.memory;
      if (JSON.stringify(res.memory) !== JSON.stringify(before)) this.saved.saveMemory(res.memory);
      if (res.state !== before.state) {
        // A backoff event says when the next try is due, so a watcher sees the delays grow.
        const until = res.memory.backoffUntil;
        const due =
          res.state === 'backoff' && until !== null
            ? { nextStartAt: new Date(until).toISOString(), attempt: res.memory.consecutiveFailures + 1 }
            : {};
        this.emit({ type: 'state', state: res.state, from: before.state, message: res.reason, ...due });
      }
      const idleWake = demand.idleStopAt === null ? null : Math.max(1, demand.idleStopAt - now);
      this.loop.wakeAfter(
        res.wakeAfterMs === null ? idleWake : Math.min(res.wakeAfterMs, idleWake ?? Number.POSITIVE_INFINITY),
      );
      // Requests that woke this step are answered with its decision, before any worker reports.
      this.loop.decided(() => this.status());
      for (const action of res.actions) this.perform(action, policy);
      this.steerEndpoint(res.state);
    } catch (err) {
      this.deps.log.error({ err }, 'reconcile step failed; trying again shortly');
      this.loop.wakeAfter(Math.max(STEP_ERROR_RETRY_MS, policy?.initialDelayMs ?? 0));
    } finally {
      this.notify();
    }
  }

  private demandSettings(): DemandSettings {
    return this.deps.demand?.() ?? ALWAYS;
  }

  /**
   * Held connections go to a VM that has answered a probe; they are closed when the builder is
   * stopped or has given up (`failed`: no boot loop however many connections come).
   */
  private steerEndpoint(state: DaemonStatus['state']): void {
    const endpoint = this.endpoint;
    if (!endpoint) return;
    const vm = this.vm;
    const ready = vm !== null && !vm.stopping && vm.probe.ok;
    endpoint.ready(ready ? vm.handle.record.sshPort : null);
    if (endpoint.counts().held === 0) return;
    if (this.desired === 'stopped') {
      endpoint.failHeld('the builder is stopped (linuxkitctl start turns it on again)');
    } else if (state === 'failed') {
      endpoint.failHeld(this.memory.failedReason ?? 'the builder failed to start');
      this.wake = null;
    }
  }

  private observe(): Observed {
    const vm = this.vm;
    return {
      process: vm ? (vm.stopping ? 'stopping' : 'up') : 'none',
      processStartedAt: vm?.startedAtMs ?? null,
      exit: this.pendingExit,
      probe: vm ? { ...vm.probe, inFlight: vm.probing !== null } : { ...NO_PROBE, inFlight: false },
      start: this.startOp?.observe() ?? null,
      stopFailure: vm?.stopFailure ?? null,
      configNeedsRestart: vm !== null && vm.configGen < this.configGen,
      restartRequested: vm?.restartRequested ?? false,
      explicitStart: this.explicitStart,
      configChanged: this.configChange,
    };
  }

  /** Hands one action to its worker; never waits for it. Its end wakes the loop. */
  private perform(action: Action, policy: Policy): void {
    switch (action.type) {
      case 'start':
        if (!this.vm && !this.startOp) this.beginStart(action.cause === 'crash');
        return;
      case 'stop':
      case 'restart':
        if (action.type === 'restart' && action.cause === 'health') this.restarts++;
        if (this.vm && !this.vm.stopping) this.beginStop(this.vm, action.reason, policy);
        return;
      case 'cancel-start':
        if (this.startOp && !this.startOp.cancelling) {
          this.deps.log.info(
            { phase: this.startOp.phase, reason: action.reason },
            'cancelling the start in progress',
          );
          this.startOp.cancel();
        }
        return;
      case 'probe':
        if (this.vm) void this.runProbe(this.vm, action.check);
        return;
      case 'reset-backoff':
        this.deps.log.info(
          { failures: action.failures },
          'healthy for the stable period; the failure count is reset',
        );
        return;
    }
  }

  private beginStart(afterCrash: boolean): void {
    if (afterCrash) this.restarts++;
    const seq = ++this.bootSeq;
    const bootId = `${new Date(this.clock.now()).toISOString().replace(/[:.]/g, '-')}-${String(seq).padStart(4, '0')}`;
    const configGen = this.configGen;
    const op: StartOperation = new StartOperation({
      backend: this.deps.backend,
      buildSpec: (signal) =>
        this.deps.buildSpec(bootId, {
          adopting: false,
          signal,
          onImageProgress: (p) => {
            if (this.startOp === op) this.imageProgress.update(p);
          },
        }),
    });
    this.startOp = op;
    void op.done.then((outcome) => this.onStartEnded(op, outcome, bootId, configGen));
  }

  private onStartEnded(op: StartOperation, outcome: StartOutcome, bootId: string, configGen: number): void {
    if (this.startOp === op) {
      this.startOp = null;
      this.imageProgress.clear();
    }
    if (outcome.kind === 'started') {
      const { handle } = outcome;
      this.attach(handle, false, configGen);
      this.deps.log.info({ pid: handle.pid, bootId }, 'VM process started');
      void this.saved.saveRecord(handle.record);
    } else if (outcome.kind === 'cancelled') {
      this.deps.log.info({ bootId }, 'the start was cancelled before the VM was launched');
    } else {
      // A start that fails is a failed start like a crash at boot: it counts and backs off.
      const at = this.clock.now();
      const reason = `could not start the VM: ${messageOf(outcome.error)}`;
      this.lastExit = { code: null, signal: null, reason, at: new Date(at).toISOString() };
      this.pendingExit = { at, code: null, signal: null, reason, requested: false, everHealthy: false };
      this.emit({ type: 'exit', message: reason, started: false });
    }
    void this.loop.wake();
  }

  private beginStop(vm: Vm, reason: string, policy: Policy): void {
    vm.stopFailure = null;
    this.deps.log.info({ pid: vm.handle.pid, reason, graceMs: policy.stopGraceMs }, 'stopping the VM');
    vm.stopping = this.deps.backend.stop(vm.handle, { graceMs: policy.stopGraceMs }).then(
      (exit) => this.onExit(vm, exit),
      (err) => {
        if (this.vm !== vm) return;
        // The process may still be up: the step asks for the stop again after a pause.
        vm.stopping = null;
        vm.stopFailure = { at: this.clock.now(), error: messageOf(err) };
        this.deps.log.error({ err, pid: vm.handle.pid }, 'could not stop the VM');
        void this.loop.wake();
      },
    );
  }

  private attach(handle: VmHandle, adopted: boolean, configGen: number): Vm {
    const startedAtMs = Date.parse(handle.startedAt);
    const vm: Vm = {
      handle,
      adopted,
      startedAtMs: Number.isFinite(startedAtMs) ? startedAtMs : this.clock.now(),
      configGen,
      restartRequested: false,
      stopping: null,
      stopFailure: null,
      probe: NO_PROBE,
      probing: null,
    };
    this.vm = vm;
    void handle.exited.then((exit) => this.onExit(vm, exit));
    return vm;
  }

  /** Both the exit notification and a finished stop land here; the first one counts. */
  private onExit(vm: Vm, exit: VmExit): Promise<void> {
    if (this.vm !== vm) return Promise.resolve();
    this.vm = null;
    const at = Date.parse(exit.at);
    this.lastExit = exit;
    this.pendingExit = {
      at: Number.isFinite(at) ? at : this.clock.now(),
      code: exit.code,
      signal: exit.signal,
      reason: exit.reason,
      reboot: exit.reboot,
      requested: vm.stopping !== null,
      everHealthy: vm.probe.lastOkAt !== null,
    };
    this.emit({
      type: 'exit',
      message: exit.reason,
      code: exit.code,
      signal: exit.signal,
      requested: vm.stopping !== null,
      reboot: exit.reboot ?? false,
    });
    void this.loop.wake();
    return this.saved.saveRecord(null);
  }

  private runProbe(vm: Vm, check: ProbeCheck): Promise<void> {
    vm.probing ??= this.deps.probe(check).then(
      (r) =>
        this.onProbe(vm, { check, ok: true, latencyMs: r.latencyMs, nixVersion: r.nixVersion, error: null }),
      (err) =>
        this.onProbe(vm, { check, ok: false, latencyMs: null, nixVersion: null, error: messageOf(err) }),
    );
    return vm.probing;
  }

  private onProbe(vm: Vm, r: ProbeOutcome): void {
    vm.probing = null;
    const before = vm.probe;
    vm.probe = nextProbeView(before, r, this.clock.now());
    if (this.vm !== vm) return;
    if (before.at === null || before.ok !== r.ok || before.error !== r.error) {
      this.emit({ type: 'probe', message: probeMessage(r, vm), ok: r.ok, check: r.check });
    }
    void this.loop.wake();
  }

  private async adoptOrClear(record: VmRecord): Promise<void> {
    const { backend } = this.deps;
    // Adoption needs only the record: no spec, so no image is built for a VM that already runs.
    const handle =
      record.backend === backend.name
        ? await attempt(this.deps.log, `adopt the VM (pid ${record.pid})`, () => backend.adopt(record))
        : null;
    if (handle) {
      const vm = this.attach(handle, true, this.configGen);
      this.wake = { at: this.clock.now(), by: 'the VM an earlier daemon left running' };
      const message = `adopted the VM an earlier daemon left running (pid ${handle.pid})`;
      this.emit({ type: 'adopted', message, pid: handle.pid });
      // The first step's state comes from a probe, not from a guess.
      await this.runProbe(vm, 'nix');
      return;
    }
    this.deps.log.info(
      { pid: record.pid, backend: record.backend },
      'the recorded VM is gone; cleaning up after it',
    );
    const spec = await attempt(this.deps.log, 'build the VM spec for the clean-up', () =>
      this.deps.buildSpec(`adopt-${record.pid}`, { adopting: true }),
    );
    // Without a spec nothing can be cleaned; the record stays for a later daemon.
    if (!spec) return;
    await attempt(this.deps.log, 'clean up after the recorded VM', () => backend.prepare(spec));
    await this.saved.saveRecord(null);
  }

  // ---- helpers ----

  private async setDesired(d: DesiredState): Promise<void> {
    if (this.desired === d) return;
    this.desired = d;
    try {
      await this.saved.saveDesired(d);
      this.clearError('desired-state');
    } catch (err) {
      this.reportError('desired-state', messageOf(err));
    }
  }

  private emit(e: EventInput): void {
    this.announcer.emit(e);
  }

  private notify(): void {
    this.announcer.notify();
  }
}

function probeMessage(r: ProbeOutcome, vm: Vm): string {
  if (!r.ok) return `probe failed: ${r.error}`;
  if (r.check === 'ssh') return `probe ok: the SSH server answered in ${r.latencyMs} ms`;
  const ready =
    !vm.adopted && vm.probe.readyAt === vm.probe.at && vm.probe.readyAt !== null
      ? `; ready ${vm.probe.readyAt - vm.startedAtMs} ms after the VM started`
      : '';
  return `probe ok: Nix ${r.nixVersion} answered in ${r.latencyMs} ms${ready}`;
}
