// The real supervisor and reconcile step driving HyperkitBackend, with the STAND-IN hyperkit
// and vpnkit (tests/fixtures/hyperkit-standin) and a probe that talks to the guest through the
// vsock bridge: every way the VM can end, and how the daemon comes back from each.
import t, { type Test as Tap } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmHandle, VmRecord, VmSpec } from '../../../daemon/backend.js';
import { hyperkitPaths } from '../../../daemon/backends/hyperkit/args.js';
import { readConsoleRing } from '../../../daemon/backends/hyperkit/console-ring.js';
import { HyperkitBackend } from '../../../daemon/backends/hyperkit/hyperkit-backend.js';
import type { DaemonStatus, DesiredState, StateEvent } from '../../../daemon/controller.js';
import type { Policy, StepMemory } from '../../../daemon/reconciler/types.js';
import { Supervisor } from '../../../daemon/supervisor/supervisor.js';
import {
  eventually,
  guestCommand,
  hyperkitStandin,
  probeThroughBridge,
  readText,
  runtimeFilesLeft,
  standinsIn,
  standinSpec,
  vpnkitStandin,
} from './standin-env.js';

const policy: Policy = {
  initialDelayMs: 300,
  maxDelayMs: 2000,
  multiplier: 2,
  jitter: 0,
  maxAttempts: 5,
  stablePeriodMs: 60_000,
  bootGraceMs: 15_000,
  degradedRestartMs: 60_000,
  probeIntervalMs: 1000,
  nixProbeIntervalMs: 60_000,
  bootProbeIntervalMs: 100,
  stopGraceMs: 3000,
};

/** The HyperkitBackend, remembering its handles so a test can let a daemon "exit" (detach). */
class RecordingBackend extends HyperkitBackend {
  readonly handles: VmHandle[] = [];
  constructor() {
    super({ hyperkitBinary: hyperkitStandin, vpnkitBinary: vpnkitStandin, consolePollMs: 100 });
  }
  override async start(spec: VmSpec): Promise<VmHandle> {
    const h = await super.start(spec);
    this.handles.push(h);
    return h;
  }
  override async adopt(record: VmRecord): Promise<VmHandle | null> {
    const h = await super.adopt(record);
    if (h) this.handles.push(h);
    return h;
  }
}

class Store {
  desired: DesiredState | null = null;
  record: VmRecord | null = null;
  async loadDesired() {
    return this.desired;
  }
  async saveDesired(d: DesiredState) {
    this.desired = d;
  }
  async loadRecord() {
    return this.record;
  }
  async saveRecord(r: VmRecord | null) {
    this.record = r;
  }
  memory: StepMemory | null = null;
  async loadMemory() {
    return this.memory;
  }
  async saveMemory(m: StepMemory) {
    this.memory = m;
  }
}

interface Daemon {
  sup: Supervisor;
  backend: RecordingBackend;
  store: Store;
  events: StateEvent[];
  spec: VmSpec;
}

/** One "daemon": a Supervisor with its own backend, over the shared state directory of `spec`. */
function daemon(t: Tap, spec: VmSpec, store = new Store()): Daemon {
  const backend = new RecordingBackend();
  const events: StateEvent[] = [];
  const quiet = { info() {}, warn() {}, error() {} };
  const sup = new Supervisor({
    backend,
    buildSpec: async (bootId) => ({ ...spec, consoleLog: join(spec.stateDir, 'console', `${bootId}.log`) }),
    probe: () => probeThroughBridge(spec.sshPort),
    store,
    policy: () => policy,
    info: () => ({
      backend: 'hyperkit',
      backendReason: 'backend hyperkit in the config',
      accel: 'hvf',
      arch: 'x86_64',
      sshPort: spec.sshPort,
      configPath: join(spec.stateDir, 'config.json'),
      stateDir: spec.stateDir,
      version: '0.1.0',
    }),
    logs: async (source, lines) =>
      source === 'console' ? readConsoleRing(hyperkitPaths(spec.stateDir).consoleRing, lines) : [],
    log: quiet,
  });
  sup.events.on('event', (e: StateEvent) => events.push(e));
  t.teardown(() => sup.shutdown({ stopVm: true }));
  return { sup, backend, store, events, spec };
}

const running = (d: Daemon, what = 'running') =>
  d.sup
    .waitForState((s) => s.state === 'running' && s.healthy, 30_000)
    .catch((err: Error) => {
      throw new Error(`${what}: ${err.message}; status ${JSON.stringify(d.sup.status())}`);
    });

/** Waits for a healthy VM other than `pid`. */
const replaced = (d: Daemon, pid: number) =>
  d.sup
    .waitForState((s) => s.state === 'running' && s.healthy && s.vm.pid !== null && s.vm.pid !== pid, 30_000)
    .catch((err: Error) => {
      throw new Error(`a new VM after ${pid}: ${err.message}; status ${JSON.stringify(d.sup.status())}`);
    });

const statesAfter = (d: Daemon, from: number) =>
  d.events
    .slice(from)
    .filter((e) => e.type === 'state')
    .map((e) => e.state);

async function stoppedClean(t: Tap, d: Daemon): Promise<void> {
  await d.sup.stop();
  await d.sup.waitForState((s) => s.state === 'stopped', 30_000);
  const left = standinsIn(d.spec.stateDir);
  t.same(left, { hyperkit: [], vpnkit: [] }, 'stopped: neither hyperkit nor vpnkit is left');
  t.same(runtimeFilesLeft(d.spec), [], 'stopped: no pid file or socket is left');
}

const crashes: Array<{
  name: string;
  trigger: (d: Daemon, s: DaemonStatus) => Promise<unknown> | unknown;
  reason: RegExp | string;
}> = [
  {
    name: 'the guest powers off (exit 0)',
    trigger: (d) => guestCommand(d.spec.sshPort, 'poweroff'),
    reason: 'guest powered off',
  },
  {
    name: 'a triple fault (exit 3)',
    trigger: (d) => guestCommand(d.spec.sshPort, 'triple-fault'),
    reason: /^guest triple fault/,
  },
  {
    name: 'hyperkit fails (exit 100)',
    trigger: (d) => guestCommand(d.spec.sshPort, 'hyperkit-fail'),
    reason: 'hyperkit failed (exit code 100): vmexit_suspend: invalid reason 7',
  },
  {
    name: 'hyperkit is killed (SIGKILL)',
    trigger: (_d, s) => process.kill(s.vm.pid!, 'SIGKILL'),
    reason: 'killed by SIGKILL',
  },
  {
    name: 'vpnkit dies',
    trigger: (d) =>
      process.kill((d.backend.handles.at(-1)!.record.extra!.vpnkit as { pid: number }).pid, 'SIGKILL'),
    reason: 'vpnkit was killed by SIGKILL; the VM went down with it (hyperkit exited with code 0)',
  },
];

for (const c of crashes) {
  t.test(`${c.name}: a crash, restarted after the backoff`, async (t) => {
    const spec = await standinSpec(t);
    const d = daemon(t, spec);
    await d.sup.init();
    const before = await running(d);
    const mark = d.events.length;
    await c.trigger(d, before);
    const after = await replaced(d, before.vm.pid!);
    t.match(after.lastExit, { reason: c.reason }, 'the exit is reported in plain words');
    t.same(
      statesAfter(d, mark).slice(0, 3),
      ['backoff', 'starting', 'running'],
      'backoff before the new start',
    );
    t.equal(after.restarts, 1, 'counted as a restart');
    t.equal(d.backend.handles.length, 2);
    const [first, second] = d.backend.handles;
    const firstVpnkit = (first.record.extra!.vpnkit as { pid: number }).pid;
    const secondVpnkit = (second.record.extra!.vpnkit as { pid: number }).pid;
    t.not(secondVpnkit, firstVpnkit, 'both processes were started again');
    t.match(
      await readText(hyperkitPaths(spec.stateDir).hyperkitLog),
      /vpnkit socket present at start: yes[\s\S]*vpnkit socket present at start: yes/,
      'vpnkit first, both times',
    );
    await stoppedClean(t, d);
  });
}

t.test('the guest reboots (exit 2): started again at once, not a crash', async (t) => {
  const spec = await standinSpec(t);
  const d = daemon(t, spec);
  await d.sup.init();
  const before = await running(d);
  const mark = d.events.length;
  await guestCommand(spec.sshPort, 'reboot');
  const after = await replaced(d, before.vm.pid!);
  t.match(after.lastExit, { code: 2, reason: 'guest rebooted' });
  t.same(statesAfter(d, mark).slice(0, 2), ['starting', 'running'], 'no backoff');
  t.equal(after.restarts, 0, 'a reboot is not counted as a crash restart');
  t.match(after.backoff, null);
  await stoppedClean(t, d);
});

t.test("each boot's console is kept in its own log; logs('console') reads the ring", async (t) => {
  const spec = await standinSpec(t);
  const d = daemon(t, spec);
  await d.sup.init();
  const before = await running(d);
  await guestCommand(spec.sshPort, 'console 3');
  t.match(await d.sup.logs('console', 2), [/console line 2 of 3$/, /console line 3 of 3$/]);
  await guestCommand(spec.sshPort, 'reboot');
  await replaced(d, before.vm.pid!);
  const dir = join(spec.stateDir, 'console');
  const names = (await readdir(dir)).sort();
  t.equal(names.length, 2, 'one console log per boot');
  t.match(
    await readFile(join(dir, names[0]), 'utf8'),
    /console line 3 of 3[\s\S]*reboot: Restarting system/,
    'the first boot, to its last words',
  );
  await eventually('the second boot in its log', 10_000, async () =>
    /linuxkit-nix: ssh ready/.test(await readText(join(dir, names[1]))),
  );
  t.pass('the second boot is in the second log');
  await stoppedClean(t, d);
});

t.test('a stop request powers the guest off through ACPI, then stops vpnkit', async (t) => {
  const spec = await standinSpec(t);
  const d = daemon(t, spec);
  await d.sup.init();
  await running(d);
  await stoppedClean(t, d);
  t.match(d.sup.status().lastExit, { code: 0, reason: 'guest powered off' });
  const [log] = await readdir(join(spec.stateDir, 'console'));
  t.match(
    await readText(join(spec.stateDir, 'console', log)),
    /power button pressed \(SIGTERM\)[\s\S]*reboot: Power down/,
    'the guest saw the button',
  );
});

t.test('a stale pid file left by a killed hyperkit does not block the start', async (t) => {
  const spec = await standinSpec(t);
  const p = hyperkitPaths(spec.stateDir);
  await mkdir(spec.stateDir, { recursive: true });
  await writeFile(p.pidFile, String(spawnSync('true').pid));
  await writeFile(p.connectSocket, '');
  const d = daemon(t, spec);
  await d.sup.init();
  const s = await running(d);
  t.equal(
    (await readFile(p.pidFile, 'utf8')).trim(),
    String(s.vm.pid),
    'the new hyperkit wrote its own pid file',
  );
  t.equal(s.restarts, 0, 'started at the first attempt');
  await stoppedClean(t, d);
});

t.test('a VM left running by an earlier daemon is adopted from its record', async (t) => {
  const spec = await standinSpec(t);
  const store = new Store();
  const first = daemon(t, spec, store);
  await first.sup.init();
  const s1 = await running(first, 'the first daemon');
  // The first daemon exits and leaves the VM for the next one.
  await first.sup.shutdown({ stopVm: false });
  for (const h of first.backend.handles) await first.backend.detach(h);
  t.ok(store.record, 'the VM record was kept');

  const second = daemon(t, spec, store);
  await second.sup.init();
  const s2 = await running(second, 'the second daemon');
  t.match(s2.vm, { pid: s1.vm.pid, adopted: true }, 'the same VM, adopted');
  t.equal(second.backend.handles.length, 1);
  t.same(standinsIn(spec.stateDir).hyperkit, [s1.vm.pid], 'no second hyperkit was started');

  // The adopted VM's end is noticed, and the daemon brings up a new one.
  await guestCommand(spec.sshPort, 'poweroff');
  const s3 = await replaced(second, s1.vm.pid!);
  t.match(s3.lastExit, { reason: 'guest powered off (adopted VM; seen on its console)' });
  t.match(s3.vm, { adopted: false });
  await stoppedClean(t, second);
});

t.test('a live hyperkit found only through its pid file is refused, never started twice', async (t) => {
  const spec = await standinSpec(t);
  const first = daemon(t, spec);
  await first.sup.init();
  const s1 = await running(first, 'the first daemon');
  await first.sup.shutdown({ stopVm: false });
  for (const h of first.backend.handles) await first.backend.detach(h);

  // A daemon that lost vm.json: the pid file shows a VM it has no record of, and the contract
  // says refuse (it may have been booted with other keys or another image), naming its pid.
  const second = daemon(t, spec, new Store());
  await second.sup.init();
  const s2 = await second.sup.waitForState((s) => s.lastExit !== null, 30_000);
  t.match(s2.lastExit, {
    reason: `could not start the VM: a live VM (hyperkit pid ${s1.vm.pid}) holds the state directory ${spec.stateDir}; adopt it or stop it first`,
  });
  t.same(standinsIn(spec.stateDir).hyperkit, [s1.vm.pid], 'no second hyperkit');

  // Once that VM is stopped by hand, the next attempt starts a fresh one.
  process.kill(s1.vm.pid!, 'SIGTERM');
  const s3 = await running(second, 'the second daemon after the stray VM is gone');
  t.not(s3.vm.pid, s1.vm.pid);
  await stoppedClean(t, second);
});
