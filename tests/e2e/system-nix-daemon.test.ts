// The way a user of a multi-user Nix meets linuxkit-nix, on this (root, disposable) machine's real
// /etc: `linuxkitctl install --system` writes /etc/nix/machines, the SSH drop-in under
// /etc/ssh/ssh_config.d and the unit; the daemon runs as the unit says (started here: no systemd
// runs in this container, hence --no-service); a plain user's `nix-build` goes to the machine's
// running nix-daemon, whose build hook reaches the VM through the system SSH config alone (no
// NIX_SSHOPTS, no NIX_CONF_DIR); then uninstall leaves every folder install touched byte for byte
// as before. A named builder (`--builder e2e`) and a free port keep it apart from other tests.
import t from 'tap';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { LinuxkitClient } from '../../client/api-client.js';
import type { DaemonStatus } from '../../daemon/controller.js';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import { readManagedBlock } from '../../daemon/host-files/managed-block.js';
import { parseSystemdUnit } from '../../daemon/host-files/systemd-unit.js';
import { ctlMain, isHealthy } from '../helpers/daemon-process.js';
import { backupDirs, restoreDirs } from '../helpers/dir-backup.js';
import { freePort, imageCacheDir, requireTool } from '../helpers/env.js';
import { buildWhereItRuns } from '../helpers/host-nix.js';
import { treeSnapshot } from '../install/install-fixtures.js';
import {
  PATIENT_BOOT_MS,
  PATIENT_FILE_TIMEOUT_MS,
  PATIENT_TEST_CONFIG,
  guestRun,
  killQemus,
  readConfig,
  writeConfig,
} from '../reliability/vm-helpers.js';

for (const tool of ['qemu-system-x86_64', 'nix-daemon', 'nix-build', 'ssh', 'useradd']) requireTool(tool);
if (process.getuid?.() !== 0)
  throw new Error('this test installs into the real /etc: run it as root (on a disposable machine)');

const BUILDER = 'e2e';
const TEST_USER = 'linuxkit-e2e-nix';
const BOOT_MS = PATIENT_BOOT_MS;
// Several tcg boots on a loaded machine: more than tap's default of 600 s per file.
t.setTimeout(PATIENT_FILE_TIMEOUT_MS);
const NIX_SOCKET = '/nix/var/nix/daemon-socket/socket';
const sshPort = await freePort();
const layout = installLayout({
  platform: 'linux',
  scope: 'system',
  root: null,
  builder: BUILDER,
  user: { name: 'root', uid: 0, gid: 0, home: '/root' },
});
// Every folder install writes into; /etc/ssh/ssh_config is only read.
const etcDirs = ['/etc/nix', '/etc/ssh/ssh_config.d', '/etc/systemd/system'];

/** Whether something accepts connections on a Unix socket. */
const answers = (path: string) =>
  new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
if (await answers(NIX_SOCKET))
  throw new Error(
    `a nix-daemon already answers on ${NIX_SOCKET}: this test starts its own with its /etc/nix/nix.conf; stop that one first`,
  );
if (existsSync(layout.stateDir))
  throw new Error(
    `${layout.stateDir} exists: a builder named ${BUILDER} is installed already (linuxkitctl uninstall --builder ${BUILDER})`,
  );

// ---- the machine before: a multi-user Nix (nix.conf, a running nix-daemon) and a plain user ----
const original = backupDirs(etcDirs);
const varLibExisted = ['/var/lib/linuxkit-nix', '/var/lib/linuxkit-nix/builders'].filter((d) =>
  existsSync(d),
);
let userCreated = false;
let nixDaemon: ChildProcess | null = null;
let daemon: ChildProcess | null = null;
let daemonStderr = '';
let daemonExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
let installed = false;
t.teardown(async () => {
  daemon?.kill('SIGKILL');
  killQemus(layout.stateDir);
  spawnSync('ssh', ['-O', 'exit', layout.alias], { stdio: 'ignore', timeout: 10_000 });
  if (installed)
    spawnSync(process.execPath, [ctlMain, 'uninstall', '--system', '--builder', BUILDER], {
      stdio: 'ignore',
      timeout: 60_000,
    });
  const undone = restoreDirs(original);
  if (undone.length) console.error(`teardown put /etc back: ${undone.join('; ')}`);
  rmSync(layout.stateDir, { recursive: true, force: true });
  for (const d of ['/var/lib/linuxkit-nix/builders', '/var/lib/linuxkit-nix']) {
    if (!varLibExisted.includes(d) && existsSync(d) && readdirSync(d).length === 0) rmdirSync(d);
  }
  nixDaemon?.kill('SIGTERM');
  if (userCreated) spawnSync('userdel', ['--remove', TEST_USER], { stdio: 'ignore' });
});

if (!existsSync('/etc/nix/nix.conf')) {
  await mkdir('/etc/nix', { recursive: true, mode: 0o755 });
  // What a multi-user Nix without build users of its own needs; builders stays the default
  // (@/etc/nix/machines), and users are not trusted: the builders are the daemon's to choose.
  await writeFile(
    '/etc/nix/nix.conf',
    [
      'build-users-group =',
      'sandbox = false',
      'substituters =',
      'builders-use-substitutes = false',
      'max-jobs = 0',
      'connect-timeout = 5',
      'allowed-users = *',
      '',
    ].join('\n'),
  );
}
if (spawnSync('id', [TEST_USER], { stdio: 'ignore' }).status !== 0) {
  execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER]);
  userCreated = true;
}
const testUser = {
  name: TEST_USER,
  uid: Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' })),
  gid: Number(execFileSync('id', ['-g', TEST_USER], { encoding: 'utf8' })),
  home: execFileSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' }).split(':')[5],
};
nixDaemon = spawn('nix-daemon', [], { stdio: 'ignore', env: { PATH: process.env.PATH, HOME: '/root' } });
for (let i = 0; !(await answers(NIX_SOCKET)); i++) {
  if (i > 100 || nixDaemon.exitCode !== null) throw new Error(`nix-daemon did not come up on ${NIX_SOCKET}`);
  await new Promise((r) => setTimeout(r, 100));
}
const etcBefore = new Map(etcDirs.map((d) => [d, existsSync(d) ? treeSnapshot(d) : null]));
const sshConfigBefore = await readFile('/etc/ssh/ssh_config', 'utf8');

const client = new LinuxkitClient({ socketPath: layout.socketPath, timeoutMs: 10_000 });
async function waitForStatus(
  pred: (s: DaemonStatus) => boolean,
  timeoutMs: number,
  what: string,
): Promise<DaemonStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    if (daemon && daemon.exitCode !== null)
      throw new Error(`linuxkitd exited while waiting for ${what}: ${daemonStderr}`);
    last = await client.status().catch((err: Error) => err.message);
    if (typeof last === 'object' && pred(last as DaemonStatus)) return last as DaemonStatus;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
}
const ctl = (args: string[]) =>
  spawnSync(process.execPath, [ctlMain, ...args], { encoding: 'utf8', timeout: 120_000 });

t.test(
  'linuxkitctl install --system --no-service writes the real /etc and names the command to run',
  async (t) => {
    const r = ctl([
      'install',
      '--system',
      '--no-service',
      '--builder',
      BUILDER,
      '--accel',
      'tcg',
      '--ssh-port',
      String(sshPort),
      '--cpus',
      '1',
      '--memory',
      '1024',
    ]);
    installed = true;
    t.equal(r.status, 0, `install exits 0${r.status === 0 ? '' : `: ${r.stderr}${r.stdout}`}`);
    t.match(r.stdout, /--no-service: no service manager was called; run the daemon with: /);
    t.notMatch(r.stdout, /^ran: /m, 'no systemctl was run');
    const machines = await readFile('/etc/nix/machines', 'utf8');
    const line = readManagedBlock(machines, `linuxkit-nix-${BUILDER}`)!.trim().split(' ');
    t.equal(line[0], `ssh-ng://${layout.alias}`);
    t.equal(line[2], layout.keys.clientKey);
    t.match(await readFile(layout.sshDropIn, 'utf8'), new RegExp(`^  Port ${sshPort}$`, 'm'));
    t.equal(await readFile('/etc/ssh/ssh_config', 'utf8'), sshConfigBefore, 'ssh_config itself is only read');
    t.notMatch(
      r.stdout,
      /does not include|Include/,
      "Debian's ssh_config already includes the drop-in folder",
    );
    // As a user may: a probe that waits out a slow guest on this loaded machine (the file install
    // created is removed by uninstall all the same).
    await writeConfig(layout.stateDir, {
      ...(await readConfig(layout.stateDir)),
      probe: PATIENT_TEST_CONFIG.probe,
    });
  },
);

t.test('the daemon, started exactly as the unit says, boots the builder to healthy', async (t) => {
  const unit = parseSystemdUnit(await readFile(layout.service.file, 'utf8'));
  const [program, ...args] = unit.execStart;
  const started = Date.now();
  daemon = spawn(program, args, {
    env: { ...unit.environment, LINUXKIT_IMAGE_CACHE: imageCacheDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemon.stderr!.on('data', (d: Buffer) => (daemonStderr += d.toString()));
  const proc = daemon;
  daemonExit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const s = await waitForStatus(isHealthy, BOOT_MS, 'the builder to become healthy');
  t.comment(`daemon start to healthy: ${Date.now() - started} ms`);
  t.equal(s.stateDir, layout.stateDir);
  t.equal(s.ssh.port, sshPort);
  t.same(s.errors, []);
});

t.test(`a plain user's nix-build goes through nix-daemon and the system SSH config to the VM`, async (t) => {
  const guest = (
    await guestRun(layout.stateDir, sshPort, 'echo $(uname -n) $(uname -r) $(uname -m)')
  ).stdout.trim();
  const started = Date.now();
  const { output, log } = await buildWhereItRuns({
    asUser: testUser,
    system: 'x86_64-linux',
    nonce: `system-${Date.now()}`,
    timeoutMs: 600_000,
  });
  t.comment(`nix-build as ${TEST_USER} through nix-daemon: ${Date.now() - started} ms; built on ${output}`);
  t.equal(output, guest, 'the output names the guest: its uname -n -r -m');
  t.not(output.split(' ')[0], hostname(), 'not the host');
  t.match(log, `ssh-ng://${layout.alias}`, "Nix's log names the builder it used");
});

t.test('uninstall after the daemon is stopped puts /etc back byte for byte', async (t) => {
  daemon!.kill('SIGTERM');
  const exit = await daemonExit!;
  daemon = null;
  t.equal(exit.code, 0, daemonStderr);
  // nix-daemon's ssh left a connection-sharing master (ControlPersist); it ends with its VM, or here.
  spawnSync('ssh', ['-O', 'exit', layout.alias], { stdio: 'ignore', timeout: 10_000 });
  const r = ctl(['uninstall', '--system', '--builder', BUILDER]);
  t.equal(r.status, 0, `uninstall exits 0${r.status === 0 ? '' : `: ${r.stderr}${r.stdout}`}`);
  installed = false;
  const removed = r.stdout.split('\n').filter((l) => /^\s+removed /.test(l)).length;
  const files = [...etcBefore.values()]
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('f ')).length;
  t.comment(
    `uninstall removed ${removed} files and folders; ${files} files under ${etcDirs.join(', ')} hashed before and after`,
  );
  for (const d of etcDirs) {
    const after = existsSync(d) ? treeSnapshot(d) : null;
    t.equal(after, etcBefore.get(d), `${d}: every file and its hash as before install`);
  }
  t.equal(await readFile('/etc/ssh/ssh_config', 'utf8'), sshConfigBefore);
  t.match(r.stdout, `kept folder ${layout.stateDir}`, 'the state folder is kept for its logs, and named');
  const left = readdirSync(layout.stateDir);
  for (const mine of ['keys', 'config.json', 'install-manifest.json'])
    t.notOk(left.includes(mine), `${mine} is gone`);
  t.ok(left.includes('log'), `what is left is the daemon's: ${left.join(', ')}`);
});
