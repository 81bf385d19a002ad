import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { defaultConfig } from '../../daemon/config/load.js';
import {
  defaultPaths,
  ensureConfigFile,
  resolveDaemonPaths,
  statePaths,
  STATE_DIR_ENV,
  type HostContext,
} from '../../daemon/config/paths.js';

t.test('default paths by platform and user', async (t) => {
  const cases: Array<[string, NodeJS.Platform, string, number, Record<string, string>, string]> = [
    [
      'macOS user agent',
      'darwin',
      '/Users/ana',
      501,
      {},
      '/Users/ana/Library/Application Support/linuxkit-nix',
    ],
    ['macOS root daemon', 'darwin', '/var/root', 0, {}, '/var/lib/linuxkit-nix'],
    ['Linux root', 'linux', '/root', 0, {}, '/var/lib/linuxkit-nix'],
    ['Linux user', 'linux', '/home/ana', 1000, {}, '/home/ana/.local/state/linuxkit-nix'],
    [
      'Linux user with XDG_STATE_HOME',
      'linux',
      '/home/ana',
      1000,
      { XDG_STATE_HOME: '/data/state' },
      '/data/state/linuxkit-nix',
    ],
    [
      'a relative XDG_STATE_HOME is ignored',
      'linux',
      '/home/ana',
      1000,
      { XDG_STATE_HOME: 'state' },
      '/home/ana/.local/state/linuxkit-nix',
    ],
    [
      'XDG does not apply on macOS',
      'darwin',
      '/Users/ana',
      501,
      { XDG_STATE_HOME: '/x' },
      '/Users/ana/Library/Application Support/linuxkit-nix',
    ],
  ];
  for (const [name, platform, home, uid, env, stateDir] of cases) {
    t.same(
      defaultPaths(platform, home, uid, env),
      { stateDir, configPath: `${stateDir}/config.json`, socketPath: `${stateDir}/daemon.sock` },
      name,
    );
  }
});

t.test('the state directory layout is named in one place', async (t) => {
  t.same(statePaths('/s'), {
    stateDir: '/s',
    config: '/s/config.json',
    vmRecord: '/s/vm.json',
    desired: '/s/desired.json',
    stepMemory: '/s/step-memory.json',
    lock: '/s/daemon.lock',
    socket: '/s/daemon.sock',
    keysDir: '/s/keys',
    consoleDir: '/s/console',
    imageDir: '/s/image',
    logDir: '/s/log',
    daemonLog: '/s/log/daemon.log',
  });
});

t.test('resolveDaemonPaths: flags, then the environment, then the default', async (t) => {
  const host: HostContext = { platform: 'linux', homedir: '/home/ana', uid: 1000, cwd: '/work' };
  const cases: Array<[string, Parameters<typeof resolveDaemonPaths>[0], NodeJS.ProcessEnv, object]> = [
    [
      'defaults',
      {},
      {},
      {
        stateDir: '/home/ana/.local/state/linuxkit-nix',
        configPath: '/home/ana/.local/state/linuxkit-nix/config.json',
        socketPath: '/home/ana/.local/state/linuxkit-nix/daemon.sock',
        vmRecord: '/home/ana/.local/state/linuxkit-nix/vm.json',
        configExplicit: false,
      },
    ],
    [
      '--state-dir moves the config and the socket with it',
      { stateDir: '/srv/lk' },
      {},
      {
        stateDir: '/srv/lk',
        configPath: '/srv/lk/config.json',
        socketPath: '/srv/lk/daemon.sock',
        keysDir: '/srv/lk/keys',
        configExplicit: false,
      },
    ],
    [
      '--config keeps the default state dir',
      { config: '/etc/lk.json' },
      {},
      {
        stateDir: '/home/ana/.local/state/linuxkit-nix',
        configPath: '/etc/lk.json',
        configExplicit: true,
      },
    ],
    [
      'relative paths are made absolute against cwd',
      { stateDir: 'st', config: 'c.json', socket: 's.sock' },
      {},
      {
        stateDir: '/work/st',
        configPath: '/work/c.json',
        socketPath: '/work/s.sock',
      },
    ],
    [
      `${STATE_DIR_ENV} is used without --state-dir`,
      {},
      { [STATE_DIR_ENV]: '/env/lk' },
      {
        stateDir: '/env/lk',
        configPath: '/env/lk/config.json',
      },
    ],
    [
      `--state-dir wins over ${STATE_DIR_ENV}`,
      { stateDir: '/flag' },
      { [STATE_DIR_ENV]: '/env/lk' },
      { stateDir: '/flag' },
    ],
    [
      'an empty environment value is ignored',
      {},
      { [STATE_DIR_ENV]: '' },
      { stateDir: '/home/ana/.local/state/linuxkit-nix' },
    ],
    ['XDG_STATE_HOME is honoured', {}, { XDG_STATE_HOME: '/xdg' }, { stateDir: '/xdg/linuxkit-nix' }],
  ];
  for (const [name, flags, env, expected] of cases) {
    t.match(resolveDaemonPaths(flags, env, host), expected, name);
  }
});

t.test('ensureConfigFile writes the effective config once, 0644, pretty JSON', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'state', 'config.json');
  const config = defaultConfig({ platform: 'linux', arch: 'x64' });
  t.equal(await ensureConfigFile(file, config), true);
  const text = await fs.readFile(file, 'utf8');
  t.same(JSON.parse(text), config);
  t.match(text, /^\{\n {2}"backend": "auto",\n/);
  t.ok(text.endsWith('}\n'));
  t.equal((await fs.stat(file)).mode & 0o777, 0o644);
  t.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700, 'a created state dir is private');

  await fs.writeFile(file, '{"cpus": 7}');
  t.equal(await ensureConfigFile(file, config), false);
  t.equal(await fs.readFile(file, 'utf8'), '{"cpus": 7}', 'an existing file is never overwritten');
  t.same(await fs.readdir(path.dirname(file)), ['config.json']);
});

t.test('ensureConfigFile racing itself writes exactly one file', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'config.json');
  const a = { ...defaultConfig({ platform: 'linux', arch: 'x64' }), cpus: 3, maxJobs: 3 };
  const b = { ...a, cpus: 5, maxJobs: 5 };
  const results = await Promise.all([ensureConfigFile(file, a), ensureConfigFile(file, b)]);
  t.same(results.sort(), [false, true]);
  t.ok([3, 5].includes(JSON.parse(await fs.readFile(file, 'utf8')).cpus));
  t.same(await fs.readdir(dir), ['config.json']);
});
