// Runs the builder VM under QEMU: spawns it in its own session, keeps a QMP connection for the
// VM's life to learn why it stopped, adopts a VM left by an earlier daemon, and stops it in steps.
import type { ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, StopOptions, VmExit, VmHandle, VmRecord, VmSpec } from '../../backend.js';
import { isSameProcess, readProcessIdentity, type ProcessIdentity } from '../../process/identity.js';
import { backendLogger, type BackendLog, type LogAt } from '../common/backend-log.js';
import { settlesWithin, signalRecorded } from '../common/child-process.js';
import { readPidFile } from '../common/pid-file.js';
import { earlyExit, killSpawned, spawnLogged } from '../common/spawn.js';
import { BackendVm } from '../common/vm-handle.js';
import { buildQemuArgs, qemuPaths, type QemuPaths } from './args.js';
import { describeVmExit } from './exit.js';
import { explainQemuFailure } from './known-failures.js';
import { QmpClient, type QmpEvent } from './qmp.js';
import { assertNoLiveVm, removeStaleFiles } from './state-files.js';
import { assertSupportedQemu, readQemuVersionOnce } from './version.js';
import { firmwareFor } from './firmware.js';

export interface QemuBackendOptions {
  /** QEMU binary; defaults to `qemu-system-<arch>` on PATH. */
  qemuBinary?: string;
  log?: BackendLog;
  /** How long start() waits for QMP to answer before giving up. Default 30 s. */
  startTimeoutMs?: number;
}

/** After `quit`, how long QEMU gets before SIGKILL. */
const QUIT_GRACE_MS = 2000;
/** A QMP command that takes longer than this means QEMU is wedged. */
const QMP_COMMAND_TIMEOUT_MS = 2000;

/** What QMP events told us about why the VM is going away. */
class ExitClues {
  shutdownReason: string | undefined;
  panicked = false;

  readonly onEvent = (e: QmpEvent): void => {
    if (e.event === 'SHUTDOWN' && typeof e.data?.reason === 'string') this.shutdownReason = e.data.reason;
    if (e.event === 'GUEST_PANICKED') this.panicked = true;
  };
}

class QemuVm extends BackendVm {
  constructor(
    record: VmRecord,
    readonly paths: QemuPaths,
    readonly child: ChildProcess | null,
    readonly qmp: QmpClient | null,
    waitForExit: (vm: QemuVm) => Promise<VmExit>,
  ) {
    super(record);
    this.watchExit(waitForExit(this));
  }
}

export class QemuBackend implements Backend {
  readonly name = 'qemu' as const;
  private readonly log: LogAt;

  constructor(private readonly opts: QemuBackendOptions = {}) {
    this.log = backendLogger(opts.log);
  }

  async prepare(spec: VmSpec): Promise<void> {
    buildQemuArgs(spec, { qemuBinary: this.opts.qemuBinary });
    await mkdir(spec.stateDir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(spec.consoleLog), { recursive: true });
    const paths = qemuPaths(spec.stateDir);
    const pid = await readPidFile(paths.pidFile);
    await assertNoLiveVm(paths, spec.stateDir);
    await rm(paths.pidFile, { force: true });
    await rm(paths.qmpSocket, { force: true });
    if (pid !== null) this.log('info', 'removed stale QEMU files', { pid, stateDir: spec.stateDir });
  }

  async start(spec: VmSpec): Promise<VmHandle> {
    const { executable } = buildQemuArgs(spec, { qemuBinary: this.opts.qemuBinary });
    await this.checkVersion(executable, spec);
    const { argv } = buildQemuArgs(spec, {
      qemuBinary: this.opts.qemuBinary,
      firmware: await firmwareFor(spec, executable),
    });
    const paths = qemuPaths(spec.stateDir);
    await mkdir(spec.stateDir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(spec.consoleLog), { recursive: true });
    // QEMU would refuse on the pid file lock, but waiting for QMP could meet the live VM's socket.
    await assertNoLiveVm(paths, spec.stateDir);

    // Output goes to a file, not a pipe: a dead daemon must never SIGPIPE its VM.
    const spawned = await spawnLogged(executable, argv, paths.stderrLog, (error) =>
      this.log('warn', 'QEMU child process error', { pid: spawned.child.pid, error: error.message }),
    );
    const { child } = spawned;
    const startedAt = new Date().toISOString();
    const childExit = spawned.exit;
    const failedEarly = (): Promise<never> =>
      earlyExit('QEMU', executable, spawned, 'before it was up', explainQemuFailure);

    const clues = new ExitClues();
    let qmp: QmpClient;
    let identity: ProcessIdentity | null;
    try {
      qmp = await Promise.race([
        this.waitForQmp(paths.qmpSocket, childExit, clues.onEvent),
        childExit.then(failedEarly),
      ]);
      await Promise.race([
        withTimeout(qmp.queryStatus(), QMP_COMMAND_TIMEOUT_MS, 'query-status'),
        childExit.then(failedEarly),
      ]);
      identity = await readProcessIdentity(child.pid!);
      if (identity === null) await failedEarly();
    } catch (err) {
      await killSpawned(spawned);
      throw err;
    }
    const pid = child.pid!;
    const record: VmRecord = {
      backend: 'qemu',
      pid,
      executable: identity!.executable,
      argv: identity!.argv,
      processStartTime: identity!.startTime,
      startedAt,
      sshPort: spec.sshPort,
      stateDir: spec.stateDir,
      consoleLog: spec.consoleLog,
      extra: { qmpSocket: paths.qmpSocket, pidFile: paths.pidFile },
    };
    const qmpClosed = closeOf(qmp);
    const vm = new QemuVm(record, paths, child, qmp, async (vm) => {
      const e = await childExit;
      // QEMU wrote its SHUTDOWN event before exiting; read the socket to its end first.
      await settlesWithin(qmpClosed, 1000);
      if (!vm.detached) await removeStaleFiles(paths, pid);
      const stderrTail = e.code !== 0 && !clues.shutdownReason ? await spawned.tail() : undefined;
      return describeVmExit(
        { ...e, shutdownReason: clues.shutdownReason, panicked: clues.panicked, stderrTail },
        now(),
      );
    });
    this.log('info', 'QEMU started', { pid, sshPort: spec.sshPort, qemu: qmp.version.qemu });
    return vm;
  }

  async adopt(record: VmRecord): Promise<VmHandle | null> {
    if (record.backend !== 'qemu') return null;
    if (!isSameProcess(record, await readProcessIdentity(record.pid))) return null;
    const paths = qemuPaths(record.stateDir);
    const qmpSocket = typeof record.extra?.qmpSocket === 'string' ? record.extra.qmpSocket : paths.qmpSocket;
    const clues = new ExitClues();
    const qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 5000, onEvent: clues.onEvent }).catch(
      (err: Error) => {
        this.log('warn', 'adopted VM has no working QMP socket; watching its pid instead', {
          pid: record.pid,
          qmpSocket,
          error: err.message,
        });
        return null;
      },
    );
    const qmpClosed = qmp ? closeOf(qmp) : null;
    const vm = new QemuVm(record, { ...paths, qmpSocket }, null, qmp, async (vm) => {
      // Not our child, so no exit status: QMP's socket closes as QEMU exits, then the pid goes.
      if (qmpClosed) await qmpClosed;
      await waitUntilGone(record, qmpClosed ? 25 : 1000);
      if (!vm.detached) await removeStaleFiles(vm.paths, record.pid);
      return describeVmExit(
        {
          code: null,
          signal: null,
          adopted: true,
          shutdownReason: clues.shutdownReason,
          panicked: clues.panicked,
        },
        now(),
      );
    });
    this.log('info', 'adopted running QEMU', { pid: record.pid, qmp: qmp !== null });
    return vm;
  }

  stop(handle: VmHandle, opts: StopOptions): Promise<VmExit> {
    const vm = asQemuVm(handle);
    return vm.stopOnce(opts, (graceMs) => this.stopInSteps(vm, graceMs));
  }

  /**
   * Stops watching a VM without stopping it (the daemon is exiting and a later one will adopt
   * it). Its `exited` may then never settle.
   */
  async detach(handle: VmHandle): Promise<void> {
    const vm = asQemuVm(handle);
    vm.detached = true;
    vm.child?.unref();
    await vm.qmp?.close();
  }

  private async stopInSteps(vm: QemuVm, graceMs: number): Promise<VmExit> {
    const settled = (ms: number) => settlesWithin(vm.exited, ms);
    if (graceMs > 0 && (await this.tryQmp(vm, 'system_powerdown')) && (await settled(graceMs)))
      return vm.exited;
    // The guest did not power off in time: QEMU quits by itself, or on SIGTERM without QMP.
    const asked = (await this.tryQmp(vm, 'quit')) || (await this.signal(vm, 'SIGTERM'));
    if (asked && (await settled(QUIT_GRACE_MS))) return vm.exited;
    this.log('warn', 'QEMU did not quit; killing it', { pid: vm.pid });
    await this.signal(vm, 'SIGKILL');
    return vm.exited;
  }

  private async tryQmp(vm: QemuVm, command: string): Promise<boolean> {
    if (!vm.qmp || vm.qmp.closed) return false;
    try {
      await withTimeout(vm.qmp.execute(command), QMP_COMMAND_TIMEOUT_MS, command);
      return true;
    } catch {
      // `quit` may close the socket before its reply arrives; the exit wait decides.
      return command === 'quit' && vm.qmp.closed;
    }
  }

  private async signal(vm: QemuVm, signal: NodeJS.Signals): Promise<boolean> {
    if (vm.child) return vm.child.exitCode === null && vm.child.signalCode === null && vm.child.kill(signal);
    // An adopted pid is signalled only while it is still the recorded process.
    return signalRecorded(vm.record, signal);
  }

  /** Refuses a QEMU older than the command line needs, before anything is started. */
  private async checkVersion(executable: string, spec: VmSpec): Promise<void> {
    const report = await readQemuVersionOnce(executable);
    if (report.version === null) {
      // A build that hides its version may still work; QEMU's own errors then tell.
      this.log('warn', 'QEMU did not report a version; starting it unchecked', {
        executable: report.executable,
        output: report.firstLine,
      });
      return;
    }
    assertSupportedQemu(report.version, report.executable, spec);
  }

  private async waitForQmp(
    socket: string,
    childExit: Promise<unknown>,
    onEvent: (e: QmpEvent) => void,
  ): Promise<QmpClient> {
    const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void childExit.then(() => (gone = true));
    let lastError: unknown;
    while (!gone && Date.now() < deadline) {
      try {
        const qmp = await QmpClient.connect(socket, {
          timeoutMs: Math.min(5000, Math.max(100, deadline - Date.now())),
          onEvent,
        });
        if (gone) await qmp.close();
        else return qmp;
      } catch (err) {
        // The socket appears once QEMU has parsed its options; until then connect is refused.
        lastError = err;
        await sleep(50);
      }
    }
    if (gone) return new Promise<never>(() => {}); // the caller's exit branch reports it
    throw new Error(`QEMU's QMP socket ${socket} did not answer within ${timeoutMs} ms`, {
      cause: lastError,
    });
  }
}

function asQemuVm(handle: VmHandle): QemuVm {
  if (!(handle instanceof QemuVm))
    throw new Error(`handle for pid ${handle.pid} was not made by QemuBackend`);
  return handle;
}

function now(): string {
  return new Date().toISOString();
}

async function waitUntilGone(record: VmRecord, intervalMs: number): Promise<void> {
  let delay = intervalMs;
  while (isSameProcess(record, await readProcessIdentity(record.pid).catch(() => null))) {
    await sleep(delay);
    delay = Math.min(delay * 2, 1000);
  }
}

function closeOf(qmp: QmpClient): Promise<void> {
  return qmp.closed ? Promise.resolve() : new Promise((resolve) => qmp.once('close', () => resolve()));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`QMP ${what} got no reply within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
