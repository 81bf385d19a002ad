// On-demand mode for real: linuxkitd with `mode: on-demand` holds the builder's SSH port itself,
// the VM is off until the host's own Nix connects, the first build succeeds on its first try
// while the VM boots under it, five builds at once wake one VM, a build that outlasts the idle
// time is not cut off, the idle stop powers the VM off after the idle time and not before, and a
// builder that cannot boot closes the connections it held, with the reason, and does not loop.
// `ss` shows only 127.0.0.1 listeners for the daemon and QEMU throughout.
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DaemonStatus, StateEvent } from '../../daemon/controller.js';
import { ensureBuilderKeys } from '../../daemon/keys/builder-keys.js';
import { freePort, pidsMatching, requireTool, tempDir } from '../helpers/env.js';
import { startTestDaemon } from '../helpers/daemon-process.js';
import { writeHostNixDir } from '../helpers/host-nix.js';

requireTool('qemu-system-x86_64');
requireTool('nix-build');
requireTool('ss');

const IDLE_MS = 10_000;
const BOOT_MS = 240_000;

const stateDir = await tempDir('ondemand');
const sshPort = await freePort();
await writeFile(
  join(stateDir, 'config.json'),
  JSON.stringify(
    {
      mode: 'on-demand',
      onDemand: { idleStopAfterMs: IDLE_MS, connectTimeoutMs: BOOT_MS },
      restart: { initialDelayMs: 500, maxAttempts: 2 },
    },
    null,
    2,
  ),
);
// The daemon makes its keys at start; the same ones, made here first, are what Nix uses.
const keys = await ensureBuilderKeys(join(stateDir, 'keys'));
const daemon = await startTestDaemon({ stateDir, sshPort });
const qmp = `${stateDir}/qmp.sock`;

const events: StateEvent[] = [];
const subscription = daemon.client.events((e) => events.push(e));
// Sampled all through the file: every QEMU pid of this state directory, and never two at once.
const qemuPids = new Set<number>();
let maxQemu = 0;
const sampler = setInterval(() => {
  const pids = pidsMatching(qmp);
  maxQemu = Math.max(maxQemu, pids.length);
  for (const p of pids) qemuPids.add(p);
}, 100);
t.teardown(() => {
  clearInterval(sampler);
  subscription.close();
  daemon.proc.kill('SIGKILL');
  for (const pid of pidsMatching(qmp)) process.kill(pid, 'SIGKILL');
});

// Nix's side: the machines file and SSH config install would write, with the on-demand timeout.
const { dir: nixDir, sshConfig } = await writeHostNixDir({
  dir: join(stateDir, 'nix'),
  scheme: 'ssh-ng',
  port: sshPort,
  keys,
  maxJobs: 8,
  connectTimeoutSec: BOOT_MS / 1000,
});

/** nix-build of a new derivation on the builder; `sleepS` makes the build take that long. */
function nixBuild(nonce: string, sleepS = 0): Promise<string> {
  const expr = `derivation {
    name = "linuxkit-ondemand-${nonce}";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "sleep ${sleepS}; echo $(uname -n) > $out" ];
  }`;
  return new Promise((resolve, reject) => {
    execFile(
      'nix-build',
      ['--no-out-link', '--max-jobs', '0', '-E', expr],
      { env: { ...process.env, NIX_CONF_DIR: nixDir, NIX_SSHOPTS: `-F ${sshConfig}` }, timeout: 2 * BOOT_MS },
      async (err, stdout, stderr) => {
        if (err) return reject(new Error(`nix-build ${nonce} failed: ${err.message}\n${stderr}`));
        resolve((await readFile(stdout.trim().split('\n').pop()!, 'utf8')).trim());
      },
    );
  });
}

/** Local addresses of every TCP listener of these pids, from `ss`. */
function listenersOf(pids: number[]): string[] {
  const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => pids.some((p) => l.includes(`pid=${p},`)))
    .map((l) => l.trim().split(/\s+/)[3]!);
}

/** Polls status every 100 ms until `pred` holds; returns when (ms since epoch) and the status. */
async function waitUntil(pred: (s: DaemonStatus) => boolean, ms: number, what: string) {
  const s = await daemon.waitFor(pred, ms, what);
  return { at: Date.now(), s };
}

t.test('asleep at start: no VM, and only the daemon listens, on 127.0.0.1', async (t) => {
  const s = await daemon.client.status();
  t.match(s, {
    state: 'stopped',
    desired: 'running',
    mode: 'on-demand',
    onDemand: { awake: false, heldConnections: 0, openConnections: 0, idleStopAfterMs: IDLE_MS },
    vm: { pid: null },
  });
  t.equal(pidsMatching(qmp).length, 0, 'no QEMU');
  const listeners = listenersOf([daemon.proc.pid!]);
  t.same(listeners, [`127.0.0.1:${sshPort}`], 'the daemon listens on 127.0.0.1:sshPort only');
  const human = daemon.ctl(['status']);
  t.match(human.stdout, /on demand: asleep: the next connection starts the VM/);
});

let firstBuildMs = 0;
t.test('VM off: one nix-build succeeds on its first try while one VM boots under it', async (t) => {
  const started = Date.now();
  let healthyAt = 0;
  const watch = daemon
    .waitFor((s) => s.state === 'running' && s.healthy, BOOT_MS, 'the woken VM to be healthy')
    .then(() => (healthyAt = Date.now()));
  const builtOn = await nixBuild(`first-${Date.now()}`);
  firstBuildMs = Date.now() - started;
  await watch;
  t.equal(builtOn, 'linuxkit-builder', 'built in the guest');
  t.equal(qemuPids.size, 1, 'exactly one VM was started');
  const s = await daemon.client.status();
  t.equal(s.restarts, 0);
  t.match(s.onDemand, { awake: true, wokenBy: /^a connection from 127\.0\.0\.1:\d+$/ });
  t.equal(events.filter((e) => e.type === 'wake').length, 1, 'one wake event');
  t.comment(
    `cold first build: ${firstBuildMs} ms from nix-build to its output; the VM was healthy ${healthyAt - started} ms after the command started`,
  );
});

t.test('QEMU and the daemon listen on 127.0.0.1 only while the VM runs', async (t) => {
  const s = await daemon.client.status();
  const listeners = listenersOf([daemon.proc.pid!, s.vm.pid!]);
  t.ok(listeners.length >= 2, `listeners: ${listeners.join(', ')}`);
  t.ok(
    listeners.every((l) => l.startsWith('127.0.0.1:')),
    'every listener is on 127.0.0.1',
  );
  t.ok(listeners.includes(`127.0.0.1:${sshPort}`), 'the daemon holds sshPort');
});

t.test('the idle stop comes after the idle time with no connection, and not before', async (t) => {
  const busy = await daemon.waitFor(
    (s) => (s.onDemand?.openConnections ?? 1) === 0 && s.onDemand?.idleStopAt != null,
    30_000,
    'the build connection to close',
  );
  const lastActivity = Date.parse(busy.onDemand!.lastActivityAt!);
  t.equal(
    Date.parse(busy.onDemand!.idleStopAt!),
    lastActivity + IDLE_MS,
    'due the idle time after the last connection',
  );
  const { at } = await waitUntil(
    (s) => s.state === 'stopped' && s.vm.pid === null,
    IDLE_MS + 60_000,
    'the idle stop',
  );
  t.ok(
    at >= lastActivity + IDLE_MS,
    `stopped ${at - lastActivity} ms after the last connection (idle time ${IDLE_MS} ms)`,
  );
  const idle = events.filter((e) => e.type === 'idle-stop');
  t.equal(idle.length, 1, 'one idle-stop event');
  t.ok(Date.parse(idle[0]!.at) >= lastActivity + IDLE_MS, 'the idle stop was decided after the idle time');
  const s = await daemon.client.status();
  t.match(s, { desired: 'running', onDemand: { awake: false } });
  t.equal(pidsMatching(qmp).length, 0, 'QEMU is gone');
});

t.test('VM off: five nix-builds at once all succeed, and one VM was started', async (t) => {
  const before = new Set(qemuPids);
  const wakesBefore = events.filter((e) => e.type === 'wake').length;
  const stamp = Date.now();
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => nixBuild(`five-${stamp}-${i}`)));
  t.same(results, Array(5).fill('linuxkit-builder'), 'all five built in the guest');
  const started = [...qemuPids].filter((p) => !before.has(p));
  t.equal(started.length, 1, 'exactly one new VM');
  t.equal(maxQemu, 1, 'never two QEMU processes at once');
  t.equal(events.filter((e) => e.type === 'wake').length - wakesBefore, 1, 'one wake event');
});

t.test(
  'a build that lasts three idle periods is not interrupted; the stop comes after it ends',
  async (t) => {
    const pid = (await daemon.client.status()).vm.pid;
    t.ok(pid, 'the VM from the five builds is still up');
    const sleepS = (3 * IDLE_MS) / 1000;
    const builtOn = await nixBuild(`long-${Date.now()}`, sleepS);
    const ended = Date.now();
    t.equal(builtOn, 'linuxkit-builder', `the ${sleepS} s build finished`);
    const s = await daemon.client.status();
    t.equal(s.vm.pid, pid, 'the same VM all along: no idle stop during the build');
    const { at } = await waitUntil(
      (s) => s.vm.pid === null,
      IDLE_MS + 60_000,
      'the idle stop after the long build',
    );
    t.ok(at - ended >= IDLE_MS - 1000, `stopped ${at - ended} ms after the build ended`);
  },
);

t.test(
  'a builder that cannot boot closes the connection it held, with the reason, and does not loop',
  async (t) => {
    const configPath = join(stateDir, 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    await writeFile(
      configPath,
      JSON.stringify({ ...config, image: { kernel: '/nonexistent/bzImage' } }, null, 2),
    );
    await daemon.waitFor(() => events.some((e) => e.type === 'config'), 20_000, 'the config change');
    const exitsBefore = events.filter((e) => e.type === 'exit').length;

    const socket = net.connect({ host: '127.0.0.1', port: sshPort });
    socket.on('error', () => undefined);
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    await closed;
    const s = await daemon.client.status();
    t.equal(s.state, 'failed');
    t.match(s.onDemand?.lastFailure, {
      reason: /gave up after 2 failed starts.*\/nonexistent\/bzImage/,
      connections: 1,
    });
    t.ok(
      events.some((e) => e.type === 'wake-failed' && /nonexistent/.test(e.message)),
      'a wake-failed event with the reason',
    );
    const exits = events.filter((e) => e.type === 'exit').length - exitsBefore;
    t.equal(exits, 2, 'two failed starts (restart.maxAttempts), no more');

    // Another connection to the failed builder is closed at once and starts nothing.
    const again = net.connect({ host: '127.0.0.1', port: sshPort });
    again.on('error', () => undefined);
    await new Promise((r) => again.once('close', r));
    await new Promise((r) => setTimeout(r, 3000));
    t.equal(events.filter((e) => e.type === 'exit').length - exitsBefore, 2, 'no further start');
    t.equal(pidsMatching(qmp).length, 0, 'no QEMU');
    t.comment(`cold first build through the daemon: ${firstBuildMs} ms`);
  },
);
