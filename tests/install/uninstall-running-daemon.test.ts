// uninstall while the daemon runs without a service manager (install --no-service, then
// linuxkitd started by hand, as scripts/up.sh does in a container; or under --root): it stops
// the daemon it installed, once the pid the daemon reports is shown to be the linuxkitd of this
// state directory, then removes everything. A real linuxkitd, told to keep its builder stopped
// (desired.json), so no VM boots.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { daemonToSignal, type DaemonClaims } from '../../client/install/unmanaged-daemon.js';
import { daemonMain, startTestDaemon } from '../helpers/daemon-process.js';
import { freePort, pidsMatching } from '../helpers/env.js';
import { cli, PROGRAM, treeSnapshot } from './install-fixtures.js';

t.test('daemonToSignal: only the pid the lock file names, running linuxkitd', async (t) => {
  const base: DaemonClaims = {
    socketPath: '/s/daemon.sock',
    stateDir: '/s',
    reportedPid: 4321,
    lockText: '4321\n',
    identity: {
      executable: '/usr/bin/node',
      argv: ['node', '/opt/lk/dist/daemon/main.js', '--state-dir', '/s'],
      startTime: '1',
    },
  };
  const argv = base.identity!;
  const rows: Array<[string, Partial<DaemonClaims>, RegExp | number]> = [
    ["this state directory's linuxkitd", {}, 4321],
    [
      'started as linuxkitd (the npm bin)',
      { identity: { ...argv, argv: ['node', '/usr/local/bin/linuxkitd'] } },
      4321,
    ],
    [
      'no lock file',
      { lockText: null },
      /\/s\/daemon\.lock is missing, so the daemon on \/s\/daemon\.sock \(pid 4321\) cannot be shown to be this install's/,
    ],
    [
      'the lock names another pid',
      { lockText: '99\n' },
      /reports pid 4321, but \/s\/daemon\.lock names 99: it is not the linuxkitd of \/s/,
    ],
    ['the pid is gone', { identity: null }, /pid 4321 is gone/],
    [
      'the pid runs something else',
      { identity: { ...argv, argv: ['sleep', '1000'] } },
      /pid 4321 runs "sleep 1000", not linuxkitd/,
    ],
    [
      'a pid never to signal',
      { reportedPid: 1, lockText: '1' },
      /reports pid 1, which is not a process to signal/,
    ],
  ];
  for (const [name, change, want] of rows) {
    const r = daemonToSignal({ ...base, ...change });
    if (typeof want === 'number') t.same(r, { ok: true, pid: want }, name);
    else t.match(r, { ok: false, reason: want }, name);
  }
});

t.test(
  'uninstall --root stops a real linuxkitd started by hand, then removes everything install made',
  async (t) => {
    const root = await mkdtemp('/tmp/lk-unrun-');
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const before = treeSnapshot(root);
    const sshPort = await freePort();
    const inst = await cli(
      'install',
      ['--root', root, '--system', '--ssh-port', String(sshPort), '--accel', 'tcg'],
      { program: { ...PROGRAM, node: process.execPath, mainJs: daemonMain } },
    );
    t.equal(inst.code, 0, inst.err);
    const stateDir = join(root, 'var/lib/linuxkit-nix');
    const configPath = join(stateDir, 'config.json');
    // The builder stays stopped: the daemon serves its API and watches the files, and boots nothing.
    await writeFile(
      join(stateDir, 'desired.json'),
      JSON.stringify({ desired: 'stopped', at: new Date().toISOString() }),
    );
    const daemon = await startTestDaemon({
      stateDir,
      sshPort,
      args: ['--config', configPath, '--socket', join(stateDir, 'daemon.sock')],
      readyTimeoutMs: 120_000,
    });
    t.teardown(() => {
      if (daemon.proc.exitCode === null && daemon.proc.signalCode === null) daemon.proc.kill('SIGKILL');
    });
    const status = await daemon.waitFor(
      (s) => s.state === 'stopped',
      60_000,
      'the daemon to report the builder stopped',
    );
    t.equal(status.daemon.pid, daemon.proc.pid, 'the daemon reports its own pid');
    t.equal((await readFile(join(stateDir, 'daemon.lock'), 'utf8')).trim(), String(daemon.proc.pid));

    const un = await cli('uninstall', ['--root', root]);
    t.equal(un.code, 0, un.err);
    t.match(
      un.out,
      `note: linuxkitd (pid ${daemon.proc.pid}) ran without a service manager: stopped it with SIGTERM`,
    );
    const exit = await daemon.exited;
    t.same(exit, { code: 0, signal: null }, 'the daemon shut down cleanly on SIGTERM');
    t.same(pidsMatching(root), [], 'no process refers to the root (no VM was ever started)');
    t.match(un.out, `removed ${configPath} (file install created)`);
    t.match(un.out, `removed ${join(root, 'etc/nix/machines')}`);
    t.match(un.out, `removed ${join(stateDir, 'install-manifest.json')} (install manifest)`);
    // What remains is the daemon's own: its log, desired.json and step memory in the kept state folder.
    const left = treeSnapshot(root)
      .split('\n')
      .filter(
        (l) => l !== '' && !l.includes('var/lib/linuxkit-nix/') && l !== 'd 0700 var/lib/linuxkit-nix/',
      );
    t.same(
      left,
      before
        .split('\n')
        .filter((l) => l !== '')
        .concat(['d 0755 var/', 'd 0755 var/lib/']),
      'outside the kept state folder, the tree is as before install',
    );
  },
);
