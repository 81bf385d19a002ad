// The whole way through install, on the real builder VM (one boot, QEMU/tcg): the compiled
// `linuxkitctl install --root` writes every file; the daemon is started exactly as the installed
// systemd unit says; the host's own Nix builds on the VM through the machines file and SSH
// drop-in install wrote (no hand-written builder config); doctor passes on the healthy builder
// and names two real failures; the daemon repairs drift of its registration and says so on
// /v1/events; uninstall leaves the tree as it was, and no process is left behind.
import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LinuxkitClient } from '../../client/api-client.js';
import type { DaemonStatus, StateEvent } from '../../daemon/controller.js';
import type { CheckResult as DoctorCheck } from '../../client/install/doctor-checks.js';
import { installLayout, MANAGED_BLOCK_NAME } from '../../daemon/host-files/install-layout.js';
import { readManagedBlock, removeManagedBlock } from '../../daemon/host-files/managed-block.js';
import { parseSystemdUnit } from '../../daemon/host-files/systemd-unit.js';
import { ctlMain, daemonMain } from '../helpers/daemon-process.js';
import { freePort, imageCacheDir, pidsMatching, requireTool } from '../helpers/env.js';
import { buildWhereItRuns, writeHostNixConf } from '../helpers/host-nix.js';
import { treeSnapshot } from '../install/install-fixtures.js';
import { isExecutableFile, serviceNodePath } from '../../daemon/host-files/node-path.js';

requireTool('qemu-system-x86_64');
requireTool('nix-build');
requireTool('ssh');
if (!existsSync(daemonMain) || !existsSync(ctlMain))
  throw new Error(`${daemonMain} is missing: build first (npx tsc -p tsconfig.json)`);

const BOOT_MS = 240_000;
const REPAIR_MS = 15_000;
const FOREIGN_MACHINES =
  '# builders kept by hand\nssh://nix@arm.example.org aarch64-linux /etc/nix/id_arm 4 1 big-parallel - -';

// Short, under /tmp: socket and ControlPath lengths depend on it.
const root = await mkdtemp('/tmp/lk-ib-');
const sshPort = await freePort();
const layout = installLayout({
  platform: 'linux',
  scope: 'system',
  root,
  user: { name: 'root', uid: 0, gid: 0, home: '/root' },
});

// What a machine has before install: a machines file with someone else's builder (no final
// newline), a nix.conf whose builders reads that file, ssh_config including the drop-in folder,
// another drop-in, and another program's state.
await mkdir(join(root, 'etc/nix'), { recursive: true });
await writeFile(layout.machinesFile, FOREIGN_MACHINES);
await writeHostNixConf(join(root, 'etc/nix'), layout.machinesFile);
await mkdir(join(root, 'etc/ssh/ssh_config.d'), { recursive: true });
await writeFile(
  join(root, 'etc/ssh/ssh_config'),
  'Include /etc/ssh/ssh_config.d/*.conf\n\nHost *\n    SendEnv LANG LC_*\n',
);
await writeFile(join(root, 'etc/ssh/ssh_config.d/other.conf'), 'Host example\n  User someone\n');
await mkdir(join(root, 'var/lib/other-app'), { recursive: true });
await writeFile(join(root, 'var/lib/other-app/data'), 'not ours\n');
const treeBefore = treeSnapshot(root);

// Stand-ins for the service managers, first on PATH: they only record that they were called.
const stubDir = await mkdtemp('/tmp/lk-ib-stub-');
const stubLog = join(stubDir, 'calls.log');
for (const tool of ['systemctl', 'launchctl']) {
  await writeFile(join(stubDir, tool), `#!/bin/sh\necho "${tool} $*" >> '${stubLog}'\nexit 0\n`);
  await chmod(join(stubDir, tool), 0o755);
}
const cliEnv = { ...process.env, PATH: `${stubDir}:${process.env.PATH}` };
/** The node install records in the unit: the first on the CLI's PATH, unresolved. */
const serviceNode = serviceNodePath(
  { pathEnv: cliEnv.PATH, platform: process.platform, isExecutable: isExecutableFile },
  process.execPath,
).node;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function ctl(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [ctlMain, ...args],
      { env: cliEnv, timeout: 120_000, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function doctor(): Promise<{ run: Run; ok: boolean; checks: Map<string, DoctorCheck> }> {
  const run = await ctl(['doctor', '--root', root, '--system', '--json']);
  const parsed = JSON.parse(run.stdout) as { ok: boolean; checks: DoctorCheck[] };
  return { run, ok: parsed.ok, checks: new Map(parsed.checks.map((c) => [c.id, c])) };
}

// ---- the daemon, as the installed unit runs it ----
let unit: { execStart: string[]; environment: Record<string, string> } | null = null;
let daemon: ChildProcess | null = null;
let daemonStderr = '';
let daemonExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
const client = new LinuxkitClient({ socketPath: layout.socketPath, timeoutMs: 10_000 });

function startDaemonFromUnit(): void {
  if (!unit) throw new Error('no unit parsed yet');
  const [program, ...args] = unit.execStart;
  // systemd passes the unit's Environment= and little else; the image cache is shared by every
  // test so the guest image is not rebuilt here.
  const proc = spawn(program, args, {
    env: { ...unit.environment, LINUXKIT_IMAGE_CACHE: imageCacheDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemonStderr = '';
  proc.stderr!.on('data', (d: Buffer) => (daemonStderr += d.toString()));
  daemonExit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  daemon = proc;
}

async function waitForStatus(
  pred: (s: DaemonStatus) => boolean,
  timeoutMs: number,
  what: string,
): Promise<DaemonStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    if (daemon && (daemon.exitCode !== null || daemon.signalCode !== null))
      throw new Error(`linuxkitd exited while waiting for ${what}: ${daemonStderr}`);
    try {
      const s = await client.status();
      if (pred(s)) return s;
      last = s;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
}
const healthy = (s: DaemonStatus) => s.state === 'running' && s.healthy;

/** Collects /v1/events until closed; `waitFor` resolves on the first match, past or future. */
function followEvents() {
  const seen: StateEvent[] = [];
  const waiters: Array<{ pred: (e: StateEvent) => boolean; resolve: (e: StateEvent) => void }> = [];
  const sub = client.events((e) => {
    seen.push(e);
    for (const w of waiters.splice(0)) {
      if (w.pred(e)) w.resolve(e);
      else waiters.push(w);
    }
  });
  return {
    seen,
    close: () => sub.close(),
    waitFor(pred: (e: StateEvent) => boolean, timeoutMs: number, what: string): Promise<StateEvent> {
      const found = seen.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no ${what} event within ${timeoutMs} ms; saw: ${seen.map((e) => e.message).join(' | ')}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({ pred, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
  };
}

/** ssh's connection-sharing master for the alias, started by Nix's ssh through the drop-in. */
async function closeSshMaster(): Promise<void> {
  await new Promise<void>((resolve) =>
    execFile('ssh', ['-F', layout.sshDropIn, '-O', 'exit', layout.alias], () => resolve()),
  );
}

t.teardown(async () => {
  // Whatever happened above, leave no daemon, VM or ssh master behind, and no files.
  daemon?.kill('SIGKILL');
  await closeSshMaster().catch(() => undefined);
  for (const pid of pidsMatching(root)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await rm(root, { recursive: true, force: true });
  await rm(stubDir, { recursive: true, force: true });
});

let installedMachines = '';
let installedDropIn = '';

t.test('linuxkitctl install --root writes every file and calls no service manager', async (t) => {
  const r = await ctl([
    'install',
    '--root',
    root,
    '--system',
    '--accel',
    'tcg',
    '--ssh-port',
    String(sshPort),
  ]);
  t.equal(r.code, 0, r.stderr + r.stdout);
  t.match(r.stdout, /--root: no service manager was called/);
  t.notOk(existsSync(stubLog), 'neither systemctl nor launchctl was run');
  installedMachines = await readFile(layout.machinesFile, 'utf8');
  installedDropIn = await readFile(layout.sshDropIn, 'utf8');
  t.ok(
    installedMachines.startsWith(`${FOREIGN_MACHINES}\n`),
    'the foreign builder line stays first, byte for byte',
  );
  const line = readManagedBlock(installedMachines, MANAGED_BLOCK_NAME)!.trim().split(' ');
  t.equal(line[0], 'ssh-ng://linuxkit-builder');
  t.equal(line[2], layout.keys.clientKey, 'the key installed under the root');
  t.match(installedDropIn, new RegExp(`^  Port ${sshPort}$`, 'm'));
  const config = JSON.parse(await readFile(layout.configPath, 'utf8')) as { accel: string; sshPort: number };
  t.equal(config.accel, 'tcg');
  t.equal(config.sshPort, sshPort);
  unit = parseSystemdUnit(await readFile(layout.service.file, 'utf8'));
  t.same(unit.execStart, [
    serviceNode,
    daemonMain,
    '--config',
    layout.configPath,
    '--state-dir',
    layout.stateDir,
    '--socket',
    layout.socketPath,
  ]);
  for (const arg of unit.execStart.slice(2).filter((a) => a.startsWith('/')))
    t.ok(arg.startsWith(`${root}/`), `${arg} is under the root`);
});

t.test(
  "the daemon started with the unit's ExecStart boots the builder to healthy, finding the registration right",
  async (t) => {
    const started = Date.now();
    startDaemonFromUnit();
    const s = await waitForStatus(healthy, BOOT_MS, 'the builder to become healthy');
    t.comment(`daemon start to healthy: ${Date.now() - started} ms`);
    t.equal(s.stateDir, layout.stateDir);
    t.equal(s.configPath, layout.configPath);
    t.equal(s.accel, 'tcg');
    t.equal(s.ssh.port, sshPort);
    t.same(s.errors, [], 'no current problems (no registration error)');
    const log = await readFile(join(layout.stateDir, 'log', 'daemon.log'), 'utf8');
    t.match(log, /keeping the registration files of this install/);
    t.notMatch(log, /"type":"repair"/, 'nothing to repair right after install');
    t.equal(await readFile(layout.machinesFile, 'utf8'), installedMachines);
  },
);

t.test("the host's Nix builds on the VM through the machines file and drop-in install wrote", async (t) => {
  const { output, log } = await buildWhereItRuns({
    nixConfDir: join(root, 'etc/nix'),
    sshConfigFile: layout.sshDropIn,
    system: 'x86_64-linux',
    nonce: `install-${Date.now()}`,
  });
  const [builtOn, kernel, arch] = output.split(' ');
  t.equal(builtOn, 'linuxkit-builder', 'the output names the guest');
  t.not(builtOn, hostname(), 'not the host');
  t.equal(arch, 'x86_64');
  t.comment(`built on ${output}`);
  t.match(log, /linuxkit-builder/, "Nix's log names the builder it used");
  t.ok(kernel);
});

t.test('doctor --root passes every check that applies on the healthy builder', async (t) => {
  const d = await doctor();
  t.equal(d.run.code, 0, d.run.stdout);
  t.equal(d.ok, true);
  t.equal(d.checks.get('service-loaded')?.skipped, true, 'no service manager under --root');
  for (const id of [
    'install',
    'daemon-answers',
    'builder-healthy',
    'ssh-alias',
    'host-key',
    'machines-entry',
    'nix-builders',
    'key-permissions',
    'guest-disk',
    'guest-clock',
  ]) {
    const c = d.checks.get(id);
    t.ok(c?.ok && !c.skipped, `${id}: ${c?.message}`);
  }
});

t.test('drift: the drop-in given another port is repaired by the daemon, and doctor agrees', async (t) => {
  const events = followEvents();
  t.teardown(() => events.close());
  await events.waitFor((e) => e.initial === true, 10_000, 'initial');
  await writeFile(layout.sshDropIn, installedDropIn.replace(`Port ${sshPort}`, 'Port 2200'));
  const e = await events.waitFor(
    (e) => e.type === 'repair' && e.file === layout.sshDropIn,
    REPAIR_MS,
    'drop-in repair',
  );
  t.equal(
    e.message,
    `restored the SSH entry for linuxkit-builder in ${layout.sshDropIn} (it had been changed)`,
  );
  t.equal(await readFile(layout.sshDropIn, 'utf8'), installedDropIn, 'byte for byte what install wrote');
  const d = await doctor();
  t.equal(d.checks.get('ssh-alias')?.ok, true, d.checks.get('ssh-alias')?.message ?? '');
  t.equal(d.ok, true);
});

t.test(
  'drift: the machines block removed while the daemon runs comes back, with a repair event on /v1/events',
  async (t) => {
    const events = followEvents();
    t.teardown(() => events.close());
    await events.waitFor((e) => e.initial === true, 10_000, 'initial');
    const without = removeManagedBlock(installedMachines, MANAGED_BLOCK_NAME);
    t.equal(without, FOREIGN_MACHINES, 'only the foreign lines are left');
    const removedAt = Date.now();
    await writeFile(layout.machinesFile, without);
    const e = await events.waitFor(
      (e) => e.type === 'repair' && e.file === layout.machinesFile,
      REPAIR_MS,
      'machines repair',
    );
    t.comment(`block removed to repair event: ${Date.now() - removedAt} ms`);
    t.equal(e.message, `restored the machines entry in ${layout.machinesFile} (it was missing)`);
    t.equal(e.reason, 'missing');
    t.equal(
      await readFile(layout.machinesFile, 'utf8'),
      installedMachines,
      'byte for byte what install wrote',
    );
    // Our own write must not start another round.
    await new Promise((r) => setTimeout(r, 2000));
    t.equal(events.seen.filter((x) => x.type === 'repair').length, 1, 'exactly one repair event');
    const s = await client.status();
    t.same(s.errors, []);
    t.ok(healthy(s), 'the builder stayed healthy');
  },
);

t.test(
  'the daemon stopped: doctor reports "daemon answers" failing with its fix, and a drop-in nobody repairs',
  async (t) => {
    const before = await client.status();
    // kill -9, as a crash: the VM keeps running for the next daemon to adopt.
    daemon!.kill('SIGKILL');
    await daemonExit;
    daemon = null;
    await writeFile(layout.sshDropIn, installedDropIn.replace(`Port ${sshPort}`, 'Port 2200'));
    const d = await doctor();
    t.equal(d.run.code, 1);
    t.equal(d.ok, false);
    const answers = d.checks.get('daemon-answers')!;
    t.equal(answers.ok, false);
    t.match(answers.message, `linuxkitd does not answer on ${layout.socketPath}`);
    t.match(answers.fix, `start it: ${serviceNode} ${daemonMain} --config ${layout.configPath}`);
    t.match(answers.fix, join(layout.stateDir, 'log', 'daemon.log'));
    t.equal(d.checks.get('builder-healthy')?.skipped, true);
    const alias = d.checks.get('ssh-alias')!;
    t.equal(alias.ok, false);
    t.match(alias.message, `port is 2200, expected ${sshPort}`);
    t.match(alias.fix, 'run linuxkitctl install again');
    t.equal(d.checks.get('host-key')?.ok, true, 'the VM itself still answers with the pinned key');
    t.equal(pidsMatching(`${layout.stateDir}/qmp.sock`).length, 1, 'the VM outlived its daemon');

    // The next daemon repairs the drop-in when it starts and adopts the VM.
    startDaemonFromUnit();
    const s = await waitForStatus(healthy, 60_000, 'the new daemon to adopt a healthy VM');
    t.equal(s.vm.pid, before.vm.pid, 'same VM');
    t.equal(s.vm.adopted, true);
    t.equal(await readFile(layout.sshDropIn, 'utf8'), installedDropIn, 'restored at start');
    const log = await readFile(join(layout.stateDir, 'log', 'daemon.log'), 'utf8');
    t.match(log, `restored the SSH entry for linuxkit-builder in ${layout.sshDropIn} (it had been changed)`);
    const again = await doctor();
    t.equal(again.ok, true, again.run.stdout);
  },
);

t.test('uninstall --root puts the tree back as it was before install, and no process is left', async (t) => {
  daemon!.kill('SIGTERM');
  const exit = await daemonExit!;
  daemon = null;
  t.equal(exit.code, 0, daemonStderr);
  await closeSshMaster();
  t.same(pidsMatching(`${layout.stateDir}/qmp.sock`), [], 'no QEMU left');

  const r = await ctl(['uninstall', '--root', root, '--system']);
  t.equal(r.code, 0, r.stderr + r.stdout);
  t.notOk(existsSync(stubLog), 'no service manager was called');
  // The state folder holds the daemon's own log and console: uninstall keeps it and says so.
  t.match(r.stdout, `kept folder ${layout.stateDir}`);
  const left = (await readdir(layout.stateDir)).sort();
  for (const mine of ['keys', 'config.json', 'install-manifest.json'])
    t.notOk(left.includes(mine), `${mine} is gone`);
  t.ok(left.includes('log'), `what is left is the daemon's: ${left.join(', ')}`);
  const strip = (snapshot: string) =>
    snapshot
      .split('\n')
      .filter((l) => !l.includes(' var/lib/linuxkit-nix'))
      .join('\n');
  t.equal(
    strip(treeSnapshot(root)),
    strip(treeBefore),
    'outside the kept state folder, byte for byte as before install',
  );
  // The fix uninstall prints for the kept folder; then the whole tree is as before.
  await rm(layout.stateDir, { recursive: true });
  t.equal(treeSnapshot(root), treeBefore, 'the whole tree hashes as before install');
  t.same(pidsMatching(root), [], 'no process refers to the install root');
});
