// Several builders side by side: every name a builder gets (state directory, socket, SSH alias,
// service label and unit, managed block) comes from config/builders.ts, and linuxkitd's
// --builder, install's layout and linuxkitctl's socket lookup all agree with it.
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { builderSocketPath, listBuilderSockets } from '../../client/commands/builders.js';
import {
  builderNameProblem,
  builderNames,
  builderStateDir,
  findBuilders,
} from '../../daemon/config/builders.js';
import { parseDaemonArgs } from '../../daemon/config/flags.js';
import {
  resolveDaemonPaths,
  STATE_DIR_ENV,
  STATE_LAYOUT,
  type HostContext,
} from '../../daemon/config/paths.js';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import { daemonServiceSpec } from '../../daemon/host-files/daemon-service.js';

t.test(
  'the default builder keeps its names; a named one derives each of its own from the name',
  async (t) => {
    t.same(builderNames(null), {
      builder: null,
      alias: 'linuxkit-builder',
      launchdLabel: 'org.nix-community.linuxkit-nix',
      systemdUnit: 'linuxkit-nix.service',
      blockName: 'linuxkit-nix',
    });
    t.same(builderNames('arm'), {
      builder: 'arm',
      alias: 'linuxkit-builder-arm',
      launchdLabel: 'org.nix-community.linuxkit-nix.arm',
      systemdUnit: 'linuxkit-nix-arm.service',
      blockName: 'linuxkit-nix-arm',
    });
    t.equal(builderStateDir('/var/lib/linuxkit-nix', null), '/var/lib/linuxkit-nix');
    t.equal(builderStateDir('/var/lib/linuxkit-nix', 'arm'), '/var/lib/linuxkit-nix/builders/arm');
  },
);

t.test('builder names: short, lower-case, safe in paths, labels, unit names and ssh aliases', async (t) => {
  for (const ok of ['arm', 'x86', 'a', 'aarch64-2', 'b'.repeat(16)])
    t.equal(builderNameProblem(ok), null, ok);
  for (const bad of ['', 'ARM', 'arm_64', '-arm', 'arm-', 'a/b', '..', 'a.b', 'b'.repeat(17), 'arm 2']) {
    t.match(
      builderNameProblem(bad),
      /^a builder name is 1 to 16 characters of a-z, 0-9 and '-', starting and ending with a letter or digit \(e\.g\. arm\); got /,
      JSON.stringify(bad),
    );
    t.throws(() => builderNames(bad), /a builder name is/);
    t.throws(() => builderStateDir('/s', bad), /a builder name is/);
  }
});

t.test(
  'linuxkitd --builder NAME: its own state directory, config and socket unless --state-dir says otherwise',
  async (t) => {
    const host: HostContext = { platform: 'linux', homedir: '/home/ana', uid: 1000, cwd: '/work' };
    const parsed = parseDaemonArgs(['--builder', 'arm', '--arch', 'aarch64']);
    t.ok(parsed.ok);
    if (!parsed.ok) return;
    t.same(parsed.args.paths, { builder: 'arm' });
    t.match(resolveDaemonPaths(parsed.args.paths, {}, host), {
      stateDir: '/home/ana/.local/state/linuxkit-nix/builders/arm',
      configPath: '/home/ana/.local/state/linuxkit-nix/builders/arm/config.json',
      socketPath: '/home/ana/.local/state/linuxkit-nix/builders/arm/daemon.sock',
    });
    t.match(
      resolveDaemonPaths({ builder: 'arm' }, { [STATE_DIR_ENV]: '/env/lk' }, host),
      { stateDir: '/env/lk/builders/arm' },
      `below ${STATE_DIR_ENV}`,
    );
    t.match(
      resolveDaemonPaths({ builder: 'arm' }, {}, { ...host, uid: 0 }),
      { stateDir: '/var/lib/linuxkit-nix/builders/arm' },
      'root: below /var/lib',
    );
    t.match(
      resolveDaemonPaths({ builder: 'arm', stateDir: '/srv/arm' }, {}, host),
      { stateDir: '/srv/arm', socketPath: '/srv/arm/daemon.sock' },
      '--state-dir wins',
    );

    t.same(parseDaemonArgs(['--builder', 'ARM']), {
      ok: false,
      errors: [
        {
          key: '--builder',
          message: `--builder: a builder name is 1 to 16 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (e.g. arm); got "ARM"`,
        },
      ],
    });
    t.same(parseDaemonArgs(['--builder']), {
      ok: false,
      errors: [{ key: '--builder', message: '--builder needs a value' }],
    });
  },
);

t.test(
  'install --builder NAME: the layout and the service carry the names, next to the default builder',
  async (t) => {
    const alice = { name: 'alice', uid: 501, gid: 20, home: '/Users/alice' };
    const root = { name: 'root', uid: 0, gid: 0, home: '/root' };
    const mac = installLayout({ platform: 'darwin', scope: 'user', root: null, user: alice, builder: 'arm' });
    t.equal(mac.stateDir, '/Users/alice/Library/Application Support/linuxkit-nix/builders/arm');
    t.equal(mac.baseStateDir, '/Users/alice/Library/Application Support/linuxkit-nix');
    t.equal(mac.socketPath, `${mac.stateDir}/daemon.sock`);
    t.equal(mac.keys.clientKey, `${mac.stateDir}/keys/client_ed25519`);
    t.equal(mac.alias, 'linuxkit-builder-arm');
    t.equal(mac.blockName, 'linuxkit-nix-arm');
    t.match(mac.service, {
      manager: 'launchd',
      label: 'org.nix-community.linuxkit-nix.arm',
      file: '/Users/alice/Library/LaunchAgents/org.nix-community.linuxkit-nix.arm.plist',
    });
    t.equal(
      mac.sshDropIn,
      '/etc/ssh/ssh_config.d/linuxkit-nix.conf',
      'one drop-in file; each builder has its own block in it',
    );
    t.equal(mac.machinesFile, '/etc/nix/machines');

    const linux = installLayout({
      platform: 'linux',
      scope: 'system',
      root: '/r',
      user: root,
      builder: 'arm',
    });
    t.equal(linux.stateDir, '/r/var/lib/linuxkit-nix/builders/arm');
    t.match(linux.service, {
      manager: 'systemd',
      unit: 'linuxkit-nix-arm.service',
      file: '/r/etc/systemd/system/linuxkit-nix-arm.service',
    });
    const spec = daemonServiceSpec(linux, { node: '/n', mainJs: '/m.js' }, { stopGraceMs: 20_000 });
    // biome-ignore format: option and value pairs, one per line, read as the command line
    t.same(spec.programArguments, [
    '/n', '/m.js',
    '--config', '/r/var/lib/linuxkit-nix/builders/arm/config.json',
    '--state-dir', '/r/var/lib/linuxkit-nix/builders/arm',
    '--socket', '/r/var/lib/linuxkit-nix/builders/arm/daemon.sock',
    '--builder', 'arm',
  ]);
    t.match(spec.description, /builder arm/);

    const plain = installLayout({ platform: 'linux', scope: 'system', root: '/r', user: root });
    t.equal(plain.builder, null);
    t.equal(plain.stateDir, plain.baseStateDir);
    t.notOk(
      daemonServiceSpec(
        plain,
        { node: '/n', mainJs: '/m.js' },
        { stopGraceMs: 20_000 },
      ).programArguments.includes('--builder'),
    );
  },
);

t.test(
  "linuxkitctl finds a builder's socket by the same rule, and lists every builder for status --all",
  async (t) => {
    const base = t.testdir({});
    const env = { [STATE_DIR_ENV]: base };
    const host = { platform: 'linux' as const, uid: 1000, homedir: '/home/ana' };
    t.equal(builderSocketPath('arm', env, host), path.join(base, 'builders', 'arm', 'daemon.sock'));
    t.equal(builderSocketPath(null, env, host), path.join(base, 'daemon.sock'));
    t.equal(
      builderSocketPath('arm', {}, host),
      '/home/ana/.local/state/linuxkit-nix/builders/arm/daemon.sock',
    );
    t.equal(
      builderSocketPath('arm', {}, { ...host, uid: 0 }),
      '/var/lib/linuxkit-nix/builders/arm/daemon.sock',
    );
    t.equal(
      builderSocketPath('arm', env, host),
      resolveDaemonPaths({ builder: 'arm' }, env, { ...host, homedir: host.homedir, cwd: '/' }).socketPath,
      'the daemon and the client agree',
    );
    t.throws(() => builderSocketPath('Arm', env, host), /--builder: a builder name is/);

    t.same((await listBuilderSockets(env, host)).builders, [], 'nothing there yet');
    await writeFile(path.join(base, STATE_LAYOUT.config), '{}');
    for (const name of ['x86', 'arm']) {
      await mkdir(path.join(base, 'builders', name), { recursive: true });
      await writeFile(path.join(base, 'builders', name, STATE_LAYOUT.config), '{}');
    }
    await mkdir(path.join(base, 'builders', 'empty'), { recursive: true });
    await mkdir(path.join(base, 'builders', 'Not_A_Name'), { recursive: true });
    await writeFile(path.join(base, 'builders', 'Not_A_Name', STATE_LAYOUT.config), '{}');
    const { builders } = await listBuilderSockets(env, host);
    t.same(
      builders,
      [
        { builder: null, stateDir: base, socketPath: path.join(base, 'daemon.sock') },
        {
          builder: 'arm',
          stateDir: path.join(base, 'builders', 'arm'),
          socketPath: path.join(base, 'builders', 'arm', 'daemon.sock'),
        },
        {
          builder: 'x86',
          stateDir: path.join(base, 'builders', 'x86'),
          socketPath: path.join(base, 'builders', 'x86', 'daemon.sock'),
        },
      ],
      'the default first, then by name; folders without a config or socket, or not named like a builder, are left out',
    );
    t.same(
      await findBuilders(path.join(base, 'nowhere'), { config: 'config.json', socket: 'daemon.sock' }),
      [],
    );
  },
);
