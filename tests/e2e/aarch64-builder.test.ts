// Two builders side by side, for real: `linuxkitctl install --root --builder arm --arch aarch64`
// next to the default x86_64 builder, each daemon started exactly as its installed unit says, an
// arm64 guest (Debian's arm64 packages) and an x86_64 guest booted under tcg at the same time.
// The host's own Nix then sends an aarch64-linux derivation to the arm64 VM and an x86_64-linux
// one to the x86_64 VM through the one machines file and SSH drop-in install wrote. This is the
// only test that boots two VMs; everything else about the aarch64 image is checked without one.
import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LinuxkitClient } from '../../client/api-client.js';
import type { DaemonStatus } from '../../daemon/controller.js';
import type { CheckResult as DoctorCheck } from '../../client/install/doctor-checks.js';
import { installLayout, type InstallLayout } from '../../daemon/host-files/install-layout.js';
import { readManagedBlock } from '../../daemon/host-files/managed-block.js';
import { parseSystemdUnit } from '../../daemon/host-files/systemd-unit.js';
import { ctlMain, daemonMain } from '../helpers/daemon-process.js';
import { freePort, imageCacheDir, pidsMatching, requireTool, tempDir } from '../helpers/env.js';
import { buildWhereItRuns, writeHostNixConf } from '../helpers/host-nix.js';
import { isExecutableFile, serviceNodePath } from '../../daemon/host-files/node-path.js';

/** The node install records in the unit: the first on PATH, unresolved. */
const serviceNode = serviceNodePath(
  { pathEnv: process.env.PATH, platform: process.platform, isExecutable: isExecutableFile },
  process.execPath,
).node;

for (const tool of ['qemu-system-aarch64', 'qemu-system-x86_64', 'nix-build', 'ssh']) requireTool(tool);
if (!existsSync(daemonMain) || !existsSync(ctlMain))
  throw new Error(`${daemonMain} is missing: build first (npx tsc -p tsconfig.json)`);

const BOOT_MS = 240_000;
// Short, under /tmp: socket and ControlPath lengths depend on it.
const root = await mkdtemp('/tmp/lk-a64-');
const rootUser = { name: 'root', uid: 0, gid: 0, home: '/root' };
const arm = installLayout({ platform: 'linux', scope: 'system', root, user: rootUser, builder: 'arm' });
const x86 = installLayout({ platform: 'linux', scope: 'system', root, user: rootUser });
const ports = { arm: await freePort(), x86: await freePort() };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
/** The compiled linuxkitctl; the client finds the builders under the root's state folder. */
function ctl(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, LINUXKIT_NIX_STATE_DIR: x86.stateDir };
  delete env.LINUXKIT_SOCKET;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [ctlMain, ...args],
      { env, timeout: 120_000, maxBuffer: 8 << 20 },
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

interface Daemon {
  layout: InstallLayout;
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  client: LinuxkitClient;
}
const daemons: Daemon[] = [];

/** Starts linuxkitd exactly as the installed systemd unit says (plus the tests' shared image cache). */
async function startFromUnit(layout: InstallLayout): Promise<Daemon> {
  const unit = parseSystemdUnit(await readFile(layout.service.file, 'utf8'));
  const [program, ...args] = unit.execStart;
  const proc = spawn(program, args, {
    env: { ...unit.environment, LINUXKIT_IMAGE_CACHE: imageCacheDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const d = {
    layout,
    proc,
    stderr: () => stderr,
    exited,
    client: new LinuxkitClient({ socketPath: layout.socketPath, timeoutMs: 10_000 }),
  };
  daemons.push(d);
  return d;
}

async function waitHealthy(d: Daemon, timeoutMs: number): Promise<DaemonStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null)
      throw new Error(`linuxkitd (${d.layout.alias}) exited: ${d.stderr()}`);
    try {
      const s = await d.client.status();
      if (s.state === 'running' && s.healthy) return s;
      last = s;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${d.layout.alias} not healthy after ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

/** ssh's connection-sharing masters that Nix's ssh left through the drop-in. */
async function closeSshMasters(): Promise<void> {
  await Promise.all(
    [arm, x86].map(
      (l) =>
        new Promise<void>((resolve) =>
          execFile('ssh', ['-F', l.sshDropIn, '-O', 'exit', l.alias], () => resolve()),
        ),
    ),
  );
}

t.teardown(async () => {
  // Whatever happened above, leave no daemon, VM or ssh master behind, and no files.
  for (const d of daemons) d.proc.kill('SIGKILL');
  await closeSshMasters().catch(() => undefined);
  for (const pid of pidsMatching(root)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await rm(root, { recursive: true, force: true });
});

t.test('install writes two builders side by side: the default x86_64 one and "arm" (aarch64)', async (t) => {
  const common = ['--root', root, '--system', '--accel', 'tcg', '--cpus', '1', '--memory', '1024'];
  const a = await ctl([
    'install',
    ...common,
    '--builder',
    'arm',
    '--arch',
    'aarch64',
    '--ssh-port',
    String(ports.arm),
  ]);
  t.equal(a.code, 0, a.code === 0 ? 'install --builder arm --arch aarch64' : a.stderr + a.stdout);
  const b = await ctl(['install', ...common, '--arch', 'x86_64', '--ssh-port', String(ports.x86)]);
  t.equal(b.code, 0, b.code === 0 ? 'install --arch x86_64 (the default builder)' : b.stderr + b.stdout);
  t.notMatch(a.stdout + b.stdout, /uses SSH port/, 'no port clash');

  t.equal(arm.stateDir, join(x86.stateDir, 'builders', 'arm'));
  const config = JSON.parse(await readFile(arm.configPath, 'utf8')) as {
    arch: string;
    systems: string[];
    accel: string;
    sshPort: number;
  };
  t.same(
    { arch: config.arch, systems: config.systems, accel: config.accel, sshPort: config.sshPort },
    { arch: 'aarch64', systems: ['aarch64-linux'], accel: 'tcg', sshPort: ports.arm },
  );

  const machines = await readFile(arm.machinesFile, 'utf8');
  const armLine = readManagedBlock(machines, 'linuxkit-nix-arm')!.trim().split(' ');
  const x86Line = readManagedBlock(machines, 'linuxkit-nix')!.trim().split(' ');
  t.same(
    armLine.slice(0, 7),
    [
      'ssh-ng://linuxkit-builder-arm',
      'aarch64-linux',
      arm.keys.clientKey,
      '1',
      '1',
      'benchmark,big-parallel',
      '-',
    ],
    'the arm builder offers aarch64-linux only, no kvm',
  );
  t.same(x86Line.slice(0, 7), [
    'ssh-ng://linuxkit-builder',
    'x86_64-linux',
    x86.keys.clientKey,
    '1',
    '1',
    'benchmark,big-parallel',
    '-',
  ]);
  t.not(armLine[7], x86Line[7], 'each builder pins its own host key');

  const dropIn = await readFile(arm.sshDropIn, 'utf8');
  t.match(
    readManagedBlock(dropIn, 'linuxkit-nix-arm'),
    new RegExp(`^Host linuxkit-builder-arm\\n  HostName 127\\.0\\.0\\.1\\n  Port ${ports.arm}\\n`),
  );
  t.match(
    readManagedBlock(dropIn, 'linuxkit-nix'),
    new RegExp(`^Host linuxkit-builder\\n  HostName 127\\.0\\.0\\.1\\n  Port ${ports.x86}\\n`),
  );
  t.match(await readFile(arm.knownHostsFile, 'utf8'), /^linuxkit-builder-arm ssh-ed25519 \S+\n$/);

  t.equal(arm.service.file, join(root, 'etc/systemd/system/linuxkit-nix-arm.service'));
  const unit = parseSystemdUnit(await readFile(arm.service.file, 'utf8'));
  t.same(unit.execStart, [
    serviceNode,
    daemonMain,
    '--config',
    arm.configPath,
    '--state-dir',
    arm.stateDir,
    '--socket',
    arm.socketPath,
    '--builder',
    'arm',
  ]);
  t.ok(existsSync(x86.service.file), 'the default builder keeps its own unit');
});

t.test(
  'both daemons, started as their units say, boot their VMs to healthy; status shows arch and accelerator',
  async (t) => {
    const started = performance.now();
    const [a, b] = await Promise.all([startFromUnit(arm), startFromUnit(x86)]);
    const [sa, sb] = await Promise.all([
      waitHealthy(a, BOOT_MS).then(
        (s) => (
          t.comment(
            `aarch64 builder: daemon start → healthy in ${Math.round(performance.now() - started)} ms`,
          ),
          s
        ),
      ),
      waitHealthy(b, BOOT_MS).then(
        (s) => (
          t.comment(
            `x86_64 builder: daemon start → healthy in ${Math.round(performance.now() - started)} ms`,
          ),
          s
        ),
      ),
    ]);
    t.match(sa, {
      arch: 'aarch64',
      accel: 'tcg',
      backend: 'qemu',
      stateDir: arm.stateDir,
      ssh: { port: ports.arm },
    });
    t.match(sb, { arch: 'x86_64', accel: 'tcg', stateDir: x86.stateDir, ssh: { port: ports.x86 } });
    t.match(sa.probe.nixVersion, /^2\.\d+/);
    t.equal(pidsMatching(`${arm.stateDir}/qmp.sock`).length, 1, 'one QEMU for the arm builder');

    const one = await ctl(['--builder', 'arm', 'status']);
    t.equal(one.code, 0, one.stderr);
    t.match(one.stdout, /^builder: running \(healthy\) {2}backend qemu\/tcg {2}guest aarch64 {2}pid \d+/);
    const json = await ctl(['status', '--builder', 'arm', '--json']);
    t.equal(
      (JSON.parse(json.stdout) as DaemonStatus).vm.pid,
      sa.vm.pid,
      '--builder arm reaches the arm daemon',
    );

    const all = await ctl(['status', '--all']);
    t.equal(all.code, 0, all.stderr);
    t.match(
      all.stdout,
      new RegExp(
        `^\\[default\\] ${x86.socketPath}\\nbuilder: running \\(healthy\\) {2}backend qemu/tcg {2}guest x86_64 `,
        'm',
      ),
    );
    t.match(
      all.stdout,
      new RegExp(
        `^\\[arm\\] ${arm.socketPath}\\nbuilder: running \\(healthy\\) {2}backend qemu/tcg {2}guest aarch64 `,
        'm',
      ),
    );
    const allJson = JSON.parse((await ctl(['status', '--all', '--json'])).stdout) as {
      builders: Array<{ builder: string | null; status: DaemonStatus }>;
    };
    t.same(
      allJson.builders.map((e) => [e.builder, e.status.arch]),
      [
        [null, 'x86_64'],
        ['arm', 'aarch64'],
      ],
    );
  },
);

t.test("the host's Nix sends each derivation to the builder of its system", async (t) => {
  const confDir = await tempDir('a64-nix');
  t.teardown(() => rm(confDir, { recursive: true, force: true }));
  // Only the machines file install wrote; the drop-in it wrote resolves both aliases.
  await writeHostNixConf(confDir, arm.machinesFile);
  const nonce = Date.now();
  const build = (system: string) =>
    buildWhereItRuns({
      nixConfDir: confDir,
      sshConfigFile: arm.sshDropIn,
      system,
      nonce: `${system}-${nonce}`,
      timeoutMs: 240_000,
    });
  const started = performance.now();
  const [onArm, onX86] = await Promise.all([build('aarch64-linux'), build('x86_64-linux')]);
  t.comment(
    `both builds done in ${Math.round(performance.now() - started)} ms: "${onArm.output}" and "${onX86.output}"`,
  );

  const [armHost, armKernel, armMachine] = onArm.output.split(' ');
  t.equal(armHost, 'linuxkit-builder', 'built in a guest');
  t.equal(armMachine, 'aarch64', 'the aarch64-linux derivation ran on an aarch64 kernel');
  t.match(armKernel, /-cloud-arm64$/, `under the arm64 guest's kernel (${armKernel})`);
  t.match(onArm.log, /linuxkit-builder-arm/, "Nix's log names the arm builder");

  const [x86Host, x86Kernel, x86Machine] = onX86.output.split(' ');
  t.equal(x86Host, 'linuxkit-builder');
  t.equal(x86Machine, 'x86_64', 'the x86_64-linux derivation ran on the x86_64 guest');
  t.notMatch(x86Kernel, /arm64/);
  t.notMatch(onX86.log, /linuxkit-builder-arm/, 'and not through the arm builder');
});

t.test('doctor --builder arm checks the arm install and passes', async (t) => {
  const r = await ctl(['doctor', '--root', root, '--system', '--builder', 'arm', '--json']);
  const parsed = JSON.parse(r.stdout) as { ok: boolean; checks: DoctorCheck[] };
  const checks = new Map(parsed.checks.map((c) => [c.id, c]));
  t.equal(r.code, 0, r.code === 0 ? 'every check passes' : r.stdout);
  t.match(checks.get('machines-entry')?.message, `has the current entry for linuxkit-builder-arm`);
  t.match(checks.get('ssh-alias')?.message, `ssh resolves linuxkit-builder-arm to 127.0.0.1:${ports.arm}`);
  t.match(checks.get('guest-accel'), {
    ok: true,
    message: 'the aarch64 guest runs under tcg (emulated: KVM is not in use on this host)',
  });
  t.equal(checks.get('host-key')?.ok, true);
});

t.test(
  'SIGTERM stops each daemon and powers its VM off through the power button, arm64 included',
  async (t) => {
    await closeSshMasters();
    const stopped = performance.now();
    for (const d of daemons) d.proc.kill('SIGTERM');
    const exits = await Promise.all(daemons.map((d) => d.exited));
    t.comment(`both daemons and VMs stopped in ${Math.round(performance.now() - stopped)} ms`);
    t.same(
      exits.map((e) => e.code),
      [0, 0],
      `both daemons exit 0 ${daemons.map((d) => d.stderr()).join('\n')}`.trim(),
    );
    const consoleDir = join(arm.stateDir, 'console');
    const console = (
      await Promise.all((await readdir(consoleDir)).map((f) => readFile(join(consoleDir, f), 'utf8')))
    ).join('\n');
    t.match(console, /linuxkit-nix: ssh ready/);
    t.match(
      console,
      /linuxkit-nix: shutting down/,
      "the guest's own shutdown ran: the GPIO power button reached it",
    );
    const daemonLog = await readFile(join(arm.stateDir, 'log', 'daemon.log'), 'utf8');
    t.match(daemonLog, /guest powered off/, 'QEMU ended with a guest power-off, not a forced quit');
    t.same(pidsMatching(root), [], 'no process refers to the install root');
  },
);
