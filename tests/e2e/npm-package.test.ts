// The way a Mac user gets linuxkit-nix, with no checkout: `npm pack` (its prepack compiles a copy
// of the project that has no dist/), the tarball installed with `npm install -g` into a temporary
// prefix, and from there, not from the checkout: `linuxkitctl install --root` writes a unit that
// runs the installed package's daemon, that daemon boots the builder (QEMU/tcg), and the host's
// Nix builds on it. Needs the npm registry this machine's npm config names, for the dependencies.
import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, posix, relative } from 'node:path';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import { LinuxkitClient } from '../../client/api-client.js';
import type { DaemonStatus } from '../../daemon/controller.js';
import { readGuestContract } from '../../daemon/image/debian/guest-files.js';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import { parseSystemdUnit } from '../../daemon/host-files/systemd-unit.js';
import { freePort, imageCacheDir, pidsMatching, repoRoot, requireTool } from '../helpers/env.js';
import { buildWhereItRuns, writeHostNixConf } from '../helpers/host-nix.js';
import { moduleSpecifiers, packageName } from '../helpers/js-imports.js';
import { PATIENT_BOOT_MS, PATIENT_FILE_TIMEOUT_MS } from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');
requireTool('nix-build');
requireTool('ssh');
requireTool('npm');
// Compiling, installing from the registry and a tcg boot on a machine that may be running more.
t.setTimeout(PATIENT_FILE_TIMEOUT_MS);

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
};

// Short, under /tmp: socket and ControlPath lengths depend on the root.
const root = await mkdtemp('/tmp/lk-np-');
const work = await mkdtemp('/tmp/lk-npw-');
const source = join(work, 'source');
const prefix = join(work, 'prefix');
const installed = join(prefix, 'lib', 'node_modules', pkg.name);
const installedCtl = join(prefix, 'bin', 'linuxkitctl');
const sshPort = await freePort();
const layout = installLayout({
  platform: 'linux',
  scope: 'system',
  root,
  user: { name: 'root', uid: 0, gid: 0, home: '/root' },
});

// Stand-ins for the service managers, first on PATH: they only record that they were called.
// The prefix's bin comes next, as on a user's PATH after a global install.
const stubDir = join(work, 'stubs');
const stubLog = join(stubDir, 'calls.log');
await mkdir(stubDir);
for (const tool of ['systemctl', 'launchctl']) {
  await writeFile(join(stubDir, tool), `#!/bin/sh\necho "${tool} $*" >> '${stubLog}'\nexit 0\n`);
  await chmod(join(stubDir, tool), 0o755);
}
// Left out: npm_config_* of an npm run that started tap (npm reads them as its config) and
// npm_package_* of the checkout; the npm runs here get the machine's own npm config.
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')),
);
env.PATH = `${stubDir}:${join(prefix, 'bin')}:${process.env.PATH}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(file: string, args: string[], opts: { cwd: string; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: opts.cwd, env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        resolve({ code, stdout, stderr: err && code === -1 ? `${err.message}\n${stderr}` : stderr });
      },
    );
  });
}
/** The installed linuxkitctl, run by its own #! line from a folder that is not the checkout. */
const ctl = (args: string[]) => run(installedCtl, args, { cwd: work });

/** Every file below `dir`, relative to `base`, with `/` separators. */
async function filesUnder(dir: string, base = repoRoot): Promise<string[]> {
  const names = await readdir(dir, { recursive: true, withFileTypes: true });
  return names
    .filter((d) => d.isFile())
    .map((d) => relative(base, join(d.parentPath, d.name)).split('\\').join('/'));
}

/** The tarball's regular files (without npm's `package/` folder) and their modes. */
async function tarballFiles(tgz: string): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    if (header.type === 'file') files.set(header.name.replace(/^package\//, ''), header.mode ?? 0);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(createReadStream(tgz), createGunzip(), ex);
  return files;
}

let daemon: ChildProcess | null = null;
let daemonStderr = '';
let daemonExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
const client = new LinuxkitClient({ socketPath: layout.socketPath, timeoutMs: 10_000 });

async function closeSshMaster(): Promise<void> {
  await new Promise<void>((resolve) =>
    execFile('ssh', ['-F', layout.sshDropIn, '-O', 'exit', layout.alias], () => resolve()),
  );
}

t.teardown(async () => {
  // Whatever happened above, leave no daemon, VM or ssh master behind, and no files.
  daemon?.kill('SIGKILL');
  await closeSshMaster().catch(() => undefined);
  for (const pid of [...pidsMatching(root), ...pidsMatching(work)]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

let tarball = '';

t.test(
  'npm pack builds a tree that has no dist/ and ships the compiled code, the guest contract and the docs, nothing else',
  async (t) => {
    // A copy, so prepack's compile proves itself on a tree without dist/ and never rewrites the
    // checkout's dist/ under other tests running from it.
    const skip = new Set(['node_modules', 'dist', '.cache', '.tap', 'coverage', '.git']);
    await cp(repoRoot, source, {
      recursive: true,
      filter: (from) => !skip.has(relative(repoRoot, from).split('/')[0]),
    });
    await symlink(realpathSync(join(repoRoot, 'node_modules')), join(source, 'node_modules'));
    t.notOk(existsSync(join(source, 'dist')), 'the copy has no dist/');
    await mkdir(join(work, 'pack'));
    const started = Date.now();
    const packed = await run('npm', ['pack', '--pack-destination', join(work, 'pack')], {
      cwd: source,
      timeoutMs: 300_000,
    });
    t.equal(packed.code, 0, 'npm pack exits 0', { stderr: packed.stderr });
    t.comment(`npm pack (with its tsc) took ${Date.now() - started} ms`);
    const tgz = (await readdir(join(work, 'pack'))).filter((n) => n.endsWith('.tgz'));
    t.same(tgz, [`${pkg.name}-${pkg.version}.tgz`]);
    tarball = join(work, 'pack', tgz[0]);

    const shipped = await tarballFiles(tarball);
    const names = [...shipped.keys()].sort();
    t.comment(`${names.length} files`);
    const sources = (
      await Promise.all(['daemon', 'client', 'launchd'].map((d) => filesUnder(join(repoRoot, d))))
    ).flat();
    const expected = [
      'package.json',
      'README.md',
      ...(existsSync(join(repoRoot, 'LICENSE')) ? ['LICENSE'] : []),
      ...sources
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
        .map((f) => `dist/${f.replace(/\.ts$/, '.js')}`),
      'guest/init',
      ...(await filesUnder(join(repoRoot, 'guest', 'rootfs'))),
      ...(await filesUnder(join(repoRoot, 'guest', 'keys'))),
      ...(await filesUnder(join(repoRoot, 'docs'))),
    ].sort();
    t.same(
      names,
      expected,
      'exactly: package.json, README, every compiled module of daemon/ client/ launchd/, guest/init, rootfs, keys, docs',
    );
    for (const must of [
      'dist/daemon/main.js',
      'dist/client/main.js',
      'dist/daemon/image/debian/cli.js',
      'guest/init',
      'guest/keys/debian-bookworm-archive.asc',
    ]) {
      t.ok(shipped.has(must), `${must} ships`);
    }
    t.same(
      names.filter((n) => /^(dist\/)?(tests|bench|scripts|nix)\//.test(n)),
      [],
      'no tests, benches, scripts or nix/',
    );
    t.same(
      names.filter((n) => (n.endsWith('.ts') && !n.endsWith('.d.ts')) || n.endsWith('.map')),
      [],
      'no TypeScript sources, no source maps',
    );
    for (const f of ['guest/init', ...(await filesUnder(join(repoRoot, 'guest', 'rootfs')))]) {
      const executable = (statSync(join(repoRoot, f)).mode & 0o111) !== 0;
      t.equal((shipped.get(f)! & 0o111) !== 0, executable, `${f} keeps its executable bit (${executable})`);
    }

    // What the shipped code imports is shipped, or is a dependency npm installs with it.
    const dependencies = new Set(Object.keys(pkg.dependencies));
    const missing: string[] = [];
    for (const file of names.filter((n) => n.endsWith('.js'))) {
      const text = await readFile(join(source, file), 'utf8');
      for (const spec of moduleSpecifiers(text)) {
        if (spec.startsWith('.')) {
          const target = posix.normalize(posix.join(posix.dirname(file), spec));
          if (!shipped.has(target)) missing.push(`${file} imports ${spec} (${target}), which does not ship`);
        } else if (
          !spec.startsWith('node:') &&
          !builtinModules.includes(spec) &&
          !dependencies.has(packageName(spec))
        ) {
          missing.push(`${file} imports ${spec}, which is not in dependencies`);
        }
      }
    }
    t.same(missing, [], 'every import of the shipped code resolves in the installed package');
  },
);

t.test(
  'npm install -g --prefix installs the tarball: linuxkitctl and linuxkitd on its bin, the same guest contract',
  async (t) => {
    const started = Date.now();
    const r = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tarball], {
      cwd: work,
      timeoutMs: 600_000,
    });
    t.equal(r.code, 0, 'npm install -g exits 0', { stderr: r.stderr });
    t.comment(`npm install -g took ${Date.now() - started} ms`);
    t.equal(realpathSync(installedCtl), join(installed, 'dist', 'client', 'main.js'));
    t.equal(realpathSync(join(prefix, 'bin', 'linuxkitd')), join(installed, 'dist', 'daemon', 'main.js'));
    const version = await ctl(['--version']);
    t.same(version, { code: 0, stdout: `linuxkitctl ${pkg.version}\n`, stderr: '' });
    const daemonVersion = await run(join(prefix, 'bin', 'linuxkitd'), ['--version'], { cwd: work });
    t.same(daemonVersion, { code: 0, stdout: `linuxkitd ${pkg.version}\n`, stderr: '' });
    // The same contract is the same image cache key: the daemon below finds the shared test image.
    const [here, there] = await Promise.all([
      readGuestContract(join(repoRoot, 'guest')),
      readGuestContract(join(installed, 'guest')),
    ]);
    t.equal(
      there.digest,
      here.digest,
      "the installed guest/ is the checkout's, byte for byte and mode for mode",
    );
  },
);

let unit: { execStart: string[]; environment: Record<string, string> } | null = null;

t.test(
  "linuxkitctl install --root from the installed package: the unit runs the installed package's daemon",
  async (t) => {
    await mkdir(join(root, 'etc/nix'), { recursive: true });
    await writeHostNixConf(join(root, 'etc/nix'), layout.machinesFile);
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
    t.equal(r.code, 0, 'install exits 0', { stdout: r.stdout, stderr: r.stderr });
    t.match(r.stdout, /--root: no service manager was called/);
    t.notOk(existsSync(stubLog), 'neither systemctl nor launchctl was run');
    unit = parseSystemdUnit(await readFile(layout.service.file, 'utf8'));
    const [node, mainJs, ...args] = unit.execStart;
    t.comment(`ExecStart: ${unit.execStart.join(' ')}`);
    t.equal(mainJs, join(installed, 'dist', 'daemon', 'main.js'), 'main.js inside the install prefix');
    t.notOk(mainJs.startsWith(`${repoRoot}/`), 'not in the checkout');
    t.ok(node.startsWith('/') && existsSync(node), `node is an absolute path that exists (${node})`);
    t.same(args, [
      '--config',
      layout.configPath,
      '--state-dir',
      layout.stateDir,
      '--socket',
      layout.socketPath,
    ]);
    t.match(
      r.stdout,
      join(installed, 'dist', 'daemon', 'main.js'),
      'the command to start it by hand names the installed daemon',
    );
  },
);

t.test("the daemon started with the unit's ExecStart boots the builder to healthy", async (t) => {
  if (!unit) throw new Error('no unit: install failed above');
  const [program, ...args] = unit.execStart;
  const started = Date.now();
  // systemd passes the unit's Environment= and little else; the image cache is shared by every
  // test, so the guest image is not rebuilt here.
  const proc = spawn(program, args, {
    cwd: '/',
    env: { ...unit.environment, LINUXKIT_IMAGE_CACHE: imageCacheDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr!.on('data', (d: Buffer) => (daemonStderr += d.toString()));
  daemonExit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  daemon = proc;
  const deadline = Date.now() + PATIENT_BOOT_MS;
  let last: unknown = null;
  let status: DaemonStatus | null = null;
  while (Date.now() < deadline && !status) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`linuxkitd exited while booting: ${daemonStderr}`);
    try {
      const s = await client.status();
      if (s.state === 'running' && s.healthy) status = s;
      last = s;
    } catch (err) {
      last = (err as Error).message;
    }
    if (!status) await new Promise((r) => setTimeout(r, 1000));
  }
  if (!status)
    throw new Error(
      `not healthy within ${PATIENT_BOOT_MS} ms; last: ${JSON.stringify(last)}; stderr: ${daemonStderr}`,
    );
  t.comment(`daemon start to healthy: ${Date.now() - started} ms`);
  t.equal(status.daemon.version, pkg.version);
  t.equal(status.stateDir, layout.stateDir);
  t.same(status.errors, [], 'no current problems');
  // Its process title is linuxkitd, so ps no longer shows the path: the pid says it is ours.
  t.equal(status.daemon.pid, proc.pid, 'the daemon answering is the one the unit command line started');
});

t.test(
  "the host's Nix builds on the VM through the machines file and drop-in the installed package wrote",
  async (t) => {
    const { output, log } = await buildWhereItRuns({
      nixConfDir: join(root, 'etc/nix'),
      sshConfigFile: layout.sshDropIn,
      system: 'x86_64-linux',
      nonce: `npm-package-${Date.now()}`,
    });
    t.comment(`built on ${output}`);
    const [builtOn, , arch] = output.split(' ');
    t.equal(builtOn, 'linuxkit-builder', 'the output names the guest');
    t.equal(arch, 'x86_64');
    t.match(log, /linuxkit-builder/, "Nix's log names the builder it used");
  },
);

t.test(
  'the daemon stops on SIGTERM and the installed uninstall --root removes what install added',
  async (t) => {
    daemon!.kill('SIGTERM');
    const exit = await daemonExit!;
    daemon = null;
    t.equal(exit.code, 0, 'linuxkitd exits 0 on SIGTERM', { stderr: daemonStderr });
    await closeSshMaster();
    t.same(pidsMatching(`${layout.stateDir}/qmp.sock`), [], 'no QEMU left');
    const r = await ctl(['uninstall', '--root', root, '--system']);
    t.equal(r.code, 0, 'uninstall exits 0', { stdout: r.stdout, stderr: r.stderr });
    t.notOk(existsSync(layout.service.file), 'the unit is gone');
    t.notOk(existsSync(stubLog), 'no service manager was called');
    t.same(pidsMatching(root), [], 'no process refers to the install root');
    t.same(pidsMatching(work), [], 'no process runs from the install prefix');
  },
);
