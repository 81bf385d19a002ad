// Runs the builder VM under hyperkit with vpnkit as its network (Intel Macs): vpnkit first, then
// hyperkit once vpnkit's sockets exist; the guest's SSH is served on 127.0.0.1 by a bridge over
// hyperkit's vsock `connect` socket; the console ring is copied into the boot's console log. The
// VM is two processes, and either one ending ends it: hyperkit's exit is the VM's exit, and a
// vpnkit that dies takes the VM down (hyperkit presses the guest's power button itself; if the
// guest does not go, the backend stops it), so the next start brings up both again, vpnkit first.
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, StopOptions, VmExit, VmHandle, VmRecord, VmSpec } from '../../backend.js';
import { writeFileAtomic } from '../../fs/atomic-write.js';
import { isSameProcess, readProcessIdentity } from '../../process/identity.js';
import { backendLogger, type BackendLog, type LogAt } from '../common/backend-log.js';
import { LiveVmError } from '../common/live-vm.js';
import { settlesWithin } from '../common/child-process.js';
import { readPidFile } from '../common/pid-file.js';
import { describeEnd, earlyExit, killSpawned, spawnLogged, type ProcessEnd } from '../common/spawn.js';
import { BackendVm } from '../common/vm-handle.js';
import { buildHyperkitArgs, buildVpnkitArgs, hyperkitPaths, type HyperkitPaths } from './args.js';
import { readConsoleRing } from './console-ring.js';
import { ConsoleRingFollower } from './console-ring-follower.js';
import { describeHyperkitExit } from './exit.js';
import { writeBootInitrd } from './guest-files.js';
import {
  adoptedProc,
  childProc,
  isSocket,
  parseProcessRecord,
  terminate,
  toProcessRecord,
  type Proc,
  type ProcessRecord,
} from './processes.js';
import {
  ensureVpnkitUuid,
  liveHyperkit,
  liveVpnkit,
  removeHyperkitLeftovers,
  removeVpnkitLeftovers,
} from './state-files.js';
import { VsockBridge } from './vsock-bridge.js';

export interface HyperkitBackendOptions {
  /** The hyperkit binary; defaults to `hyperkit` on PATH. */
  hyperkitBinary?: string;
  /** The vpnkit binary; defaults to `vpnkit` on PATH. */
  vpnkitBinary?: string;
  log?: BackendLog;
  /** How long start() waits for hyperkit to write its pid file. Default 30 s. */
  startTimeoutMs?: number;
  /** How long start() waits for vpnkit's sockets. Default 10 s. */
  vpnkitStartTimeoutMs?: number;
  /** After vpnkit dies, how long the guest gets to power off by itself. Default 5 s. */
  vpnkitLossGraceMs?: number;
  /** How often the console ring is copied into the console log. Default 1 s. */
  consolePollMs?: number;
  /** Host platform whose Unix socket path limit applies; defaults to the running one. */
  platform?: NodeJS.Platform;
}

/** vpnkit gets this long after SIGTERM before SIGKILL (it holds no state worth waiting for). */
const VPNKIT_STOP_GRACE_MS = 2000;
/** Polling for vpnkit's sockets and hyperkit's pid file while they start. */
const START_POLL_MS = 20;

class HyperkitVm extends BackendVm {
  constructor(
    record: VmRecord,
    readonly paths: HyperkitPaths,
    readonly hyperkit: Proc,
    /** null: vpnkit was already gone when the VM was adopted. */
    readonly vpnkit: Proc | null,
    readonly bridge: VsockBridge,
    readonly follower: ConsoleRingFollower,
    readonly adopted: boolean,
    readonly hyperkitTail: (() => Promise<string>) | null,
    watch: (vm: HyperkitVm) => Promise<VmExit>,
  ) {
    super(record);
    this.watchExit(watch(this));
  }
}

export class HyperkitBackend implements Backend {
  readonly name = 'hyperkit' as const;
  private readonly log: LogAt;

  constructor(private readonly opts: HyperkitBackendOptions = {}) {
    this.log = backendLogger(opts.log);
  }

  /**
   * Checks the spec, creates the state directory and the vpnkit UUID, and clears what a dead VM
   * left: a pid file whose pid is dead or not this directory's hyperkit, an orphaned vpnkit, and
   * stale sockets. A live hyperkit is refused (the contract in backend.ts): adopt() takes it over.
   */
  async prepare(spec: VmSpec): Promise<void> {
    const { paths } = await this.readyStateDir(spec);
    await this.refuseLive(paths, spec.stateDir);
    await this.clearLeftovers(paths);
  }

  async start(spec: VmSpec): Promise<VmHandle> {
    const { paths, uuid } = await this.readyStateDir(spec);
    await this.refuseLive(paths, spec.stateDir);
    await this.clearLeftovers(paths);

    // Everything that can fail without a process running goes first: the SSH port, the files.
    const bridge = await VsockBridge.listen({
      port: spec.sshPort,
      connectSocket: paths.connectSocket,
      log: this.warn,
    });
    let vpnkit: Proc | null = null;
    let hyperkit: { proc: Proc; tail: () => Promise<string> } | null = null;
    try {
      const initrd = await writeBootInitrd(spec.initrd, spec.guestFiles, paths.bootInitrd);
      const hk = buildHyperkitArgs(spec, {
        hyperkitBinary: this.opts.hyperkitBinary,
        vpnkitUuid: uuid,
        initrd,
        platform: this.opts.platform,
      });
      const vk = buildVpnkitArgs(spec, {
        vpnkitBinary: this.opts.vpnkitBinary,
        platform: this.opts.platform,
      });
      vpnkit = await this.startVpnkit(vk.executable, vk.argv, paths);
      // hyperkit empties the ring at start; removing it first means the follower never copies
      // the previous boot's bytes (they are in that boot's console log already).
      await rm(paths.consoleRing, { force: true });
      hyperkit = await this.startHyperkit(hk.executable, hk.argv, paths);
      const follower = await this.follow(spec.consoleLog, paths, false);
      const record: VmRecord = {
        backend: 'hyperkit',
        ...hyperkit.proc.record,
        startedAt: new Date().toISOString(),
        sshPort: spec.sshPort,
        stateDir: spec.stateDir,
        consoleLog: spec.consoleLog,
        extra: this.recordExtra(paths, vpnkit.record),
      };
      const vm = new HyperkitVm(
        record,
        paths,
        hyperkit.proc,
        vpnkit,
        bridge,
        follower,
        false,
        hyperkit.tail,
        (v) => this.watch(v),
      );
      this.log('info', 'hyperkit started', {
        pid: record.pid,
        vpnkitPid: vpnkit.record.pid,
        sshPort: spec.sshPort,
      });
      return vm;
    } catch (err) {
      if (hyperkit) await terminate(hyperkit.proc, 0);
      if (vpnkit) await terminate(vpnkit, 0);
      await bridge.close();
      await removeHyperkitLeftovers(paths);
      await removeVpnkitLeftovers(paths);
      await rm(paths.bootInitrd, { force: true });
      throw err;
    }
  }

  async adopt(record: VmRecord): Promise<VmHandle | null> {
    if (record.backend !== 'hyperkit') return null;
    if (!isSameProcess(record, await readProcessIdentity(record.pid))) return null;
    const paths = hyperkitPaths(record.stateDir);
    const saved = parseProcessRecord(record.extra?.vpnkit);
    const vpnkit =
      saved && isSameProcess(saved, await readProcessIdentity(saved.pid))
        ? adoptedProc('vpnkit', saved)
        : null;
    const bridge = await VsockBridge.listen({
      port: record.sshPort,
      connectSocket: paths.connectSocket,
      log: this.warn,
    });
    let follower: ConsoleRingFollower;
    try {
      follower = await this.follow(record.consoleLog, paths, true);
    } catch (err) {
      await bridge.close();
      throw err;
    }
    const hyperkit = adoptedProc('hyperkit', record);
    if (!vpnkit)
      this.log('warn', 'the adopted VM has no vpnkit left; it will be stopped and started again', {
        pid: record.pid,
      });
    this.log('info', 'adopted running hyperkit', { pid: record.pid, vpnkitPid: vpnkit?.record.pid ?? null });
    return new HyperkitVm(record, paths, hyperkit, vpnkit, bridge, follower, true, null, (v) =>
      this.watch(v),
    );
  }

  /**
   * SIGTERM to hyperkit (a power-button press once the guest has enabled ACPI; before that it
   * ends hyperkit at once), up to `graceMs` for the guest to power off, then SIGKILL; then vpnkit.
   */
  stop(handle: VmHandle, opts: StopOptions): Promise<VmExit> {
    const vm = asHyperkitVm(handle);
    return vm.stopOnce(opts, (graceMs) => this.stopInSteps(vm, graceMs));
  }

  /**
   * Stops watching a VM without stopping it (the daemon is exiting and a later one will adopt
   * it): the SSH listener closes, the processes and files stay. Its `exited` may never settle.
   */
  async detach(handle: VmHandle): Promise<void> {
    const vm = asHyperkitVm(handle);
    vm.detached = true;
    vm.hyperkit.forget();
    vm.vpnkit?.forget();
    await vm.bridge.close();
    await vm.follower.stop();
  }

  private async stopInSteps(vm: HyperkitVm, graceMs: number): Promise<VmExit> {
    if (
      graceMs > 0 &&
      (await vm.hyperkit.signal('SIGTERM')) &&
      (await settlesWithin(vm.hyperkit.ended, graceMs))
    ) {
      return vm.exited;
    }
    if (!(await settlesWithin(vm.hyperkit.ended, 0))) {
      this.log('warn', 'hyperkit did not power off in time; killing it', { pid: vm.pid, graceMs });
      await vm.hyperkit.signal('SIGKILL');
    }
    return vm.exited;
  }

  /** Waits for the VM to end (either process), then cleans up and says why it ended. */
  private async watch(vm: HyperkitVm): Promise<VmExit> {
    const vpnkitEnded = vm.vpnkit
      ? vm.vpnkit.ended
      : Promise.resolve<ProcessEnd>({ code: null, signal: null });
    const first = await Promise.race([
      vm.hyperkit.ended.then(() => 'hyperkit' as const),
      vpnkitEnded.then(() => 'vpnkit' as const),
    ]);
    let vpnkitFirst: ProcessEnd | null = null;
    if (first === 'vpnkit' && !vm.detached) {
      vpnkitFirst = await vpnkitEnded;
      const grace = this.opts.vpnkitLossGraceMs ?? 5000;
      this.log('warn', `vpnkit ${describeEnd(vpnkitFirst)}; the VM is going down with it`, {
        pid: vm.pid,
        graceMs: grace,
      });
      // hyperkit pressed the power button when its vpnkit connection broke; a guest that has
      // not enabled ACPI yet (or ignores the button) is stopped after the grace.
      if (!(await settlesWithin(vm.hyperkit.ended, grace)))
        await terminate(vm.hyperkit, Math.min(grace, 2000));
    }
    const end = await vm.hyperkit.ended;
    // A detached VM belongs to the next daemon: this one reports nothing about it.
    if (vm.detached) return new Promise<never>(() => {});
    if (vm.vpnkit && !vpnkitFirst) await terminate(vm.vpnkit, VPNKIT_STOP_GRACE_MS);
    await vm.bridge.close();
    await vm.follower.stop();
    await this.cleanUpAfter(vm);
    const stderrTail =
      vm.hyperkitTail && end.code !== 0 && end.code !== 2 ? await vm.hyperkitTail() : undefined;
    const consoleTail = vm.adopted
      ? await readConsoleRing(vm.paths.consoleRing, 20).catch(() => [])
      : undefined;
    const exit = describeHyperkitExit(
      { ...end, vpnkitFirst, adopted: vm.adopted, stderrTail, consoleTail },
      new Date().toISOString(),
    );
    this.log('info', 'hyperkit VM ended', { pid: vm.pid, reason: exit.reason });
    return exit;
  }

  private async cleanUpAfter(vm: HyperkitVm): Promise<void> {
    const { paths } = vm;
    // hyperkit removes its pid file on a normal exit; a signal leaves it behind.
    const owner = await readPidFile(paths.pidFile).catch(() => undefined);
    if (owner === vm.pid || owner === null) await removeHyperkitLeftovers(paths);
    const vpnkitOwner = await readPidFile(paths.vpnkitPidFile).catch(() => undefined);
    if (vpnkitOwner === null || vpnkitOwner === vm.vpnkit?.record.pid || !(await liveVpnkit(paths))) {
      await removeVpnkitLeftovers(paths);
    }
    // The boot copy of the initrd holds the host key; it is written afresh at each start.
    await rm(paths.bootInitrd, { force: true });
  }

  private async startVpnkit(executable: string, argv: string[], paths: HyperkitPaths): Promise<Proc> {
    const spawned = await spawnLogged(executable, argv, paths.vpnkitLog, this.childError('vpnkit'));
    let gone = false;
    void spawned.exit.then(() => (gone = true));
    try {
      const deadline = Date.now() + (this.opts.vpnkitStartTimeoutMs ?? 10_000);
      while (!(await isSocket(paths.ethSocket)) || !(await isSocket(paths.portSocket))) {
        if (gone) await earlyExit('vpnkit', executable, spawned, 'before its sockets appeared');
        if (Date.now() > deadline) {
          throw new Error(
            `vpnkit did not create ${paths.ethSocket} and ${paths.portSocket} within ${this.opts.vpnkitStartTimeoutMs ?? 10_000} ms`,
          );
        }
        await sleep(START_POLL_MS);
      }
      const identity = await readProcessIdentity(spawned.child.pid!);
      if (identity === null)
        await earlyExit('vpnkit', executable, spawned, 'right after creating its sockets');
      await writeFileAtomic(paths.vpnkitPidFile, `${spawned.child.pid}\n`, { mode: 0o600 });
      return childProc('vpnkit', spawned, toProcessRecord(spawned.child.pid!, identity!));
    } catch (err) {
      await killSpawned(spawned);
      throw err;
    }
  }

  private async startHyperkit(
    executable: string,
    argv: string[],
    paths: HyperkitPaths,
  ): Promise<{ proc: Proc; tail: () => Promise<string> }> {
    const spawned = await spawnLogged(executable, argv, paths.hyperkitLog, this.childError('hyperkit'));
    let gone = false;
    void spawned.exit.then(() => (gone = true));
    try {
      const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
      const deadline = Date.now() + timeoutMs;
      // hyperkit writes its pid file once the VM and its memory exist, just before the devices.
      while ((await readPidFile(paths.pidFile).catch(() => null)) !== spawned.child.pid) {
        if (gone) await earlyExit('hyperkit', executable, spawned, 'before it was up');
        if (Date.now() > deadline)
          throw new Error(`hyperkit did not write its pid file ${paths.pidFile} within ${timeoutMs} ms`);
        await sleep(START_POLL_MS);
      }
      const identity = await readProcessIdentity(spawned.child.pid!);
      if (identity === null) await earlyExit('hyperkit', executable, spawned, 'right after it started');
      return {
        proc: childProc('hyperkit', spawned, toProcessRecord(spawned.child.pid!, identity!)),
        tail: spawned.tail,
      };
    } catch (err) {
      await killSpawned(spawned);
      await removeHyperkitLeftovers(paths);
      throw err;
    }
  }

  private async refuseLive(paths: HyperkitPaths, stateDir: string): Promise<void> {
    const live = await liveHyperkit(paths);
    if (live) throw new LiveVmError('hyperkit', live.pid, stateDir);
  }

  private async follow(
    consoleLog: string,
    paths: HyperkitPaths,
    adopted: boolean,
  ): Promise<ConsoleRingFollower> {
    await mkdir(dirname(consoleLog), { recursive: true });
    // The boot's log exists from its start, so "the latest console log" is this boot's at once.
    await appendFile(consoleLog, '');
    const follower = new ConsoleRingFollower(paths.consoleRing, consoleLog, {
      adopted,
      intervalMs: this.opts.consolePollMs,
      onError: (err) =>
        this.log('warn', 'could not copy the console ring to the console log', { error: err.message }),
    });
    await follower.start();
    return follower;
  }

  private recordExtra(paths: HyperkitPaths, vpnkit: ProcessRecord | null): Record<string, unknown> {
    return {
      pidFile: paths.pidFile,
      connectSocket: paths.connectSocket,
      consoleRing: paths.consoleRing,
      vpnkit,
    };
  }

  private async readyStateDir(spec: VmSpec): Promise<{ paths: HyperkitPaths; uuid: string }> {
    const paths = hyperkitPaths(spec.stateDir);
    // Validates every field before anything is created; the UUID here is only a placeholder.
    buildHyperkitArgs(spec, {
      vpnkitUuid: '00000000-0000-0000-0000-000000000000',
      platform: this.opts.platform,
    });
    await mkdir(spec.stateDir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(spec.consoleLog), { recursive: true });
    const uuid = await ensureVpnkitUuid(paths.uuidFile);
    if (uuid.replaced !== undefined) {
      this.log('warn', 'vpnkit.uuid did not hold a UUID; a new one was made (the guest gets a new address)', {
        held: uuid.replaced,
      });
    }
    return { paths, uuid: uuid.uuid };
  }

  private async clearLeftovers(paths: HyperkitPaths): Promise<void> {
    const pid = await readPidFile(paths.pidFile).catch(() => null);
    if (pid !== null)
      this.log('info', 'removing a stale hyperkit pid file: its pid is dead or not this hyperkit', { pid });
    await removeHyperkitLeftovers(paths);
    const orphan = await liveVpnkit(paths);
    if (orphan) {
      this.log('warn', 'stopping a vpnkit left without its VM', { pid: orphan.pid });
      await terminate(
        adoptedProc('vpnkit', toProcessRecord(orphan.pid, orphan.identity)),
        VPNKIT_STOP_GRACE_MS,
      );
    }
    await removeVpnkitLeftovers(paths);
    // A copy of the host key that a killed daemon never got to remove.
    await rm(paths.bootInitrd, { force: true });
  }

  private readonly warn = (msg: string, obj?: Record<string, unknown>) => this.log('warn', msg, obj);

  private childError(name: string): (e: Error) => void {
    return (e) => this.log('warn', `${name} child process error`, { error: e.message });
  }
}

function asHyperkitVm(handle: VmHandle): HyperkitVm {
  if (!(handle instanceof HyperkitVm))
    throw new Error(`handle for pid ${handle.pid} was not made by HyperkitBackend`);
  return handle;
}
