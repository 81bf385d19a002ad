// In-memory stand-ins for what the supervisor drives: a hand-cranked clock, a backend whose VMs
// exit when the test says so, a probe the test switches, a store. No real process, no real time.
import type { ImageBuildProgress } from '../../daemon/image/build-progress.js';
import type { Backend, StopOptions, VmExit, VmHandle, VmRecord, VmSpec } from '../../daemon/backend.js';
import type { DesiredState, StateEvent } from '../../daemon/controller.js';
import type { Policy, ProbeCheck, StepMemory } from '../../daemon/reconciler/types.js';
import { Supervisor } from '../../daemon/supervisor/supervisor.js';
import { testPolicy as reconcilerTestPolicy } from '../reconciler/fixtures.js';
import type { Clock, SupervisorDeps } from '../../daemon/supervisor/types.js';

/** Lets every pending promise callback and immediate run (the fakes resolve without I/O). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

export class FakeClock implements Clock {
  private t = Date.parse('2025-01-01T00:00:00.000Z');
  private timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(timer: unknown): void {
    this.timers.delete(timer as number);
  }
  /**
   * The host sleeps: the wall clock moves on while timers stand still (they run on the monotonic
   * clock, which stops in sleep), so every pending timer is due that much later.
   */
  sleep(ms: number): void {
    this.t += ms;
    for (const timer of this.timers.values()) timer.at += ms;
  }
  /** Moves time forward, firing due timers in order and settling after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
    await settle();
  }
}

export class FakeVm {
  readonly handle: VmHandle;
  exitedWith: VmExit | null = null;
  private resolveExit!: (e: VmExit) => void;

  constructor(
    readonly pid: number,
    startedAt: string,
    private readonly clock: FakeClock,
    record?: VmRecord,
  ) {
    const exited = new Promise<VmExit>((r) => (this.resolveExit = r));
    this.handle = {
      pid,
      startedAt,
      exited,
      record: record ?? {
        backend: 'qemu',
        pid,
        executable: '/usr/bin/qemu-system-x86_64',
        argv: ['qemu-system-x86_64', '-name', `vm-${pid}`],
        processStartTime: startedAt,
        startedAt,
        sshPort: 31022,
        stateDir: '/state',
        consoleLog: '/state/console/boot.log',
      },
    };
  }

  /** The VM process ends on its own (or as the result of a stop). */
  exit(
    code: number | null,
    opts: { reboot?: boolean; reason?: string; signal?: NodeJS.Signals } = {},
  ): VmExit {
    if (this.exitedWith) return this.exitedWith;
    this.exitedWith = {
      code,
      signal: opts.signal ?? null,
      reason: opts.reason ?? (code === null ? 'killed' : `exited with code ${code}`),
      reboot: opts.reboot,
      at: new Date(this.clock.now()).toISOString(),
    };
    this.resolveExit(this.exitedWith);
    return this.exitedWith;
  }
}

/** A Backend whose VMs live in memory; the test makes them exit with a code. */
export class FakeBackend implements Backend {
  readonly name = 'qemu' as const;
  readonly vms: FakeVm[] = [];
  readonly prepared: VmSpec[] = [];
  readonly started: VmSpec[] = [];
  readonly adopted: VmRecord[] = [];
  readonly stops: Array<{ pid: number; opts: StopOptions }> = [];
  /** Called with each new VM: e.g. make it crash at once. */
  onStart: ((vm: FakeVm) => void) | null = null;
  startError: Error | null = null;
  /** What adopt() answers for a record. */
  adoptable: VmRecord | null = null;
  /** While set, stop() waits for it before the VM powers off. */
  stopGate: Promise<void> | null = null;
  /** While set, prepare() waits for it (a slow image build or cleanup stands in for it). */
  prepareGate: Promise<void> | null = null;
  private nextPid = 4000;

  constructor(private readonly clock: FakeClock) {}

  get current(): FakeVm | undefined {
    const last = this.vms[this.vms.length - 1];
    return last && !last.exitedWith ? last : undefined;
  }

  async prepare(spec: VmSpec): Promise<void> {
    this.prepared.push(spec);
    if (this.prepareGate) await this.prepareGate;
  }

  async start(spec: VmSpec): Promise<VmHandle> {
    this.started.push(spec);
    if (this.startError) throw this.startError;
    const vm = new FakeVm(this.nextPid++, new Date(this.clock.now()).toISOString(), this.clock);
    this.vms.push(vm);
    this.onStart?.(vm);
    return vm.handle;
  }

  async adopt(record: VmRecord): Promise<VmHandle | null> {
    this.adopted.push(record);
    if (this.adoptable !== record) return null;
    const vm = new FakeVm(record.pid, record.startedAt, this.clock, record);
    this.vms.push(vm);
    return vm.handle;
  }

  async inspect(handle: VmHandle): Promise<{ alive: boolean }> {
    return { alive: !this.vms.find((v) => v.handle === handle)?.exitedWith };
  }

  async stop(handle: VmHandle, opts: StopOptions): Promise<VmExit> {
    this.stops.push({ pid: handle.pid, opts });
    if (this.stopGate) await this.stopGate;
    const vm = this.vms.find((v) => v.handle === handle)!;
    return vm.exit(0, { reason: 'guest powered off' });
  }
}

/** The health checks, switched by the test: Nix answers in 12 ms, the SSH banner in 2 ms. */
export class FakeProbe {
  healthy = true;
  calls = 0;
  /** Which check each call asked for, in order. */
  readonly checks: ProbeCheck[] = [];
  probe = async (check: ProbeCheck = 'nix'): Promise<{ latencyMs: number; nixVersion: string | null }> => {
    this.calls++;
    this.checks.push(check);
    if (!this.healthy) throw new Error('ssh: connection refused');
    return check === 'nix' ? { latencyMs: 12, nixVersion: '2.24.9' } : { latencyMs: 2, nixVersion: null };
  };
}

export class MemoryStore {
  desired: DesiredState | null = null;
  record: VmRecord | null = null;
  readonly recordWrites: Array<VmRecord | null> = [];
  memory: StepMemory | null = null;
  readonly memoryWrites: StepMemory[] = [];
  /** When set, loadMemory() throws it (an unreadable file). */
  memoryError: Error | null = null;
  async loadDesired(): Promise<DesiredState | null> {
    return this.desired;
  }
  async saveDesired(d: DesiredState): Promise<void> {
    this.desired = d;
  }
  async loadRecord(): Promise<VmRecord | null> {
    return this.record;
  }
  async saveRecord(r: VmRecord | null): Promise<void> {
    this.record = r;
    this.recordWrites.push(r);
  }
  async loadMemory(): Promise<StepMemory | null> {
    if (this.memoryError) throw this.memoryError;
    return this.memory;
  }
  async saveMemory(m: StepMemory): Promise<void> {
    this.memory = m;
    this.memoryWrites.push(m);
  }
}

// The reconciler tests' policy, with one attempt fewer so crash loops end sooner here.
export const testPolicy: Policy = { ...reconcilerTestPolicy, maxAttempts: 4 };

export interface Harness {
  sup: Supervisor;
  clock: FakeClock;
  backend: FakeBackend;
  probe: FakeProbe;
  store: MemoryStore;
  events: StateEvent[];
  policy: Policy;
  specsBuilt: Array<{
    bootId: string;
    adopting: boolean;
    signal?: AbortSignal;
    onImageProgress?: (p: ImageBuildProgress) => void;
  }>;
  /** While set, buildSpec waits for it (a guest image being built). */
  specGate: { promise: Promise<void> | null; throwWhenAborted?: boolean };
  /** What the supervisor logged, as `level: message`. */
  logged: string[];
}

/** A promise the test resolves by hand. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

export function harness(over: Partial<SupervisorDeps> = {}): Harness {
  const clock = new FakeClock();
  const backend = new FakeBackend(clock);
  const probe = new FakeProbe();
  const store = new MemoryStore();
  const events: StateEvent[] = [];
  const specsBuilt: Harness['specsBuilt'] = [];
  const specGate: Harness['specGate'] = { promise: null };
  const logged: string[] = [];
  const h: Partial<Harness> = {
    clock,
    backend,
    probe,
    store,
    events,
    policy: { ...testPolicy },
    specsBuilt,
    specGate,
    logged,
  };
  const record = (level: string) => (_obj: object, msg?: string) =>
    void logged.push(`${level}: ${msg ?? ''}`);
  const quiet = { info: record('info'), warn: record('warn'), error: record('error') };
  const sup = new Supervisor({
    backend,
    buildSpec: async (bootId, opts) => {
      specsBuilt.push({
        bootId,
        adopting: opts.adopting,
        signal: opts.signal,
        onImageProgress: opts.onImageProgress,
      });
      if (specGate.promise) await specGate.promise;
      // Like the real image builder: one killed by the cancel throws instead of returning.
      if (specGate.throwWhenAborted && opts.signal?.aborted)
        throw new Error('the x86_64 guest image build was cancelled');
      return {
        arch: 'x86_64',
        accel: 'tcg',
        cpus: 2,
        memoryMiB: 2048,
        kernel: '/img/kernel',
        initrd: '/img/initrd',
        cmdline: 'console=ttyS0',
        sshPort: 31022,
        stateDir: '/state',
        consoleLog: `/state/console/${bootId}.log`,
        guestFiles: {},
      };
    },
    probe: probe.probe,
    store,
    policy: () => h.policy!,
    info: () => ({
      backend: 'qemu',
      backendReason: 'auto: Linux host',
      accel: 'tcg',
      arch: 'x86_64',
      sshPort: 31022,
      configPath: '/state/config.json',
      stateDir: '/state',
      version: '0.1.0',
    }),
    logs: async (source, lines) => [`${source} ${lines}`],
    log: quiet,
    clock,
    random: () => 0.5,
    pid: 99,
    ...over,
  });
  sup.events.on('event', (e: StateEvent) => events.push(e));
  h.sup = sup;
  return h as Harness;
}

/** The states the supervisor went through, from its 'state' events. */
export function statesSeen(events: StateEvent[]): string[] {
  return events.filter((e) => e.type === 'state').map((e) => e.state!);
}
