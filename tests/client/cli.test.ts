// The compiled linuxkitctl against a real API server on a temporary socket: output and exit code
// of every command.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { defaultSocketPath } from '../../client/socket-path.js';
import { ConflictError, FakeController, sampleStatus } from '../api/fixtures/fake-controller.js';
import { assertFreshBuild, runCli, spawnCli, startApi, tempSocketPath, until } from './fixtures/harness.js';

assertFreshBuild();

const unhealthy = {
  state: 'degraded' as const,
  healthy: false,
  probe: {
    ok: false,
    check: 'ssh' as const,
    latencyMs: null,
    sshLatencyMs: null,
    nixVersion: null,
    at: '2025-01-01T00:06:00.000Z',
    nixAt: null,
    error: 'banner exchange timed out',
  },
  lastExit: { code: null, signal: 'SIGKILL', reason: 'killed by SIGKILL', at: '2025-01-01T00:01:00.000Z' },
  errors: [{ source: 'config', message: 'cpus must be a positive integer', at: '2025-01-01T00:02:00.000Z' }],
};

t.test('status prints one line for a healthy builder and exits 0', async (t) => {
  const socket = await startApi(t, new FakeController());
  const { code, stdout, stderr } = await runCli(['--socket', socket, 'status']);
  t.equal(code, 0);
  t.equal(stderr, '');
  t.match(
    stdout,
    /^builder: running \(healthy\) {2}backend qemu\/tcg {2}guest x86_64 {2}pid 1234 up \S+ {2}ready in 5\.2s {2}restarts 0 {2}probe 612 ms {2}Nix 2\.8\.0\n$/,
  );
});

t.test('status --json prints the API answer', async (t) => {
  const fake = new FakeController();
  const socket = await startApi(t, fake);
  const { code, stdout } = await runCli(['status', '--json'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 0);
  t.same(JSON.parse(stdout), fake.current);
});

t.test(
  'status of an unhealthy builder exits 4 and shows the probe error, last exit and errors',
  async (t) => {
    const socket = await startApi(t, new FakeController(unhealthy));
    const { code, stdout } = await runCli(['status'], { LINUXKIT_SOCKET: socket });
    t.equal(code, 4);
    t.match(stdout, /^builder: degraded \(not healthy\)/);
    t.match(stdout, /\n {2}probe: banner exchange timed out\n/);
    t.match(stdout, /\n {2}last exit: killed by SIGKILL \(signal SIGKILL\) \S+ ago\n/);
    t.match(stdout, /\n {2}error \(config\): cpus must be a positive integer\n/);
  },
);

t.test('status with no socket exits 3 and names the socket path', async (t) => {
  const socket = tempSocketPath(t);
  const { code, stdout, stderr } = await runCli(['status'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 3);
  t.equal(stdout, '');
  t.equal(
    stderr,
    `linuxkitctl: linuxkitd is not reachable at ${socket}: no socket there (is linuxkitd running? is --socket or LINUXKIT_SOCKET right?)\n`,
  );
});

t.test('status with a stale socket nobody listens on exits 3', async (t) => {
  const socket = tempSocketPath(t);
  spawnSync(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ]);
  const { code, stderr } = await runCli(['status'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 3);
  t.match(stderr, `not reachable at ${socket}: nothing listens on it`);
});

t.test('--socket wins over LINUXKIT_SOCKET', async (t) => {
  const socket = await startApi(t, new FakeController());
  const { code } = await runCli(['--socket', socket, 'health'], {
    LINUXKIT_SOCKET: '/nonexistent/daemon.sock',
  });
  t.equal(code, 0);
});

t.test('health exits 0 when healthy and 4 with the reason when not', async (t) => {
  const healthy = await startApi(t, new FakeController());
  const ok = await runCli(['health'], { LINUXKIT_SOCKET: healthy });
  t.equal(ok.code, 0);
  t.equal(ok.stdout, 'healthy (running)\n');

  const sick = await startApi(t, new FakeController(unhealthy));
  const bad = await runCli(['health'], { LINUXKIT_SOCKET: sick });
  t.equal(bad.code, 4);
  t.equal(bad.stdout, 'not healthy (degraded): SSH probe failing: banner exchange timed out\n');
  const json = await runCli(['health', '--json'], { LINUXKIT_SOCKET: sick });
  t.equal(json.code, 4);
  t.same(JSON.parse(json.stdout), {
    healthy: false,
    state: 'degraded',
    reason: 'SSH probe failing: banner exchange timed out',
  });
});

for (const action of ['start', 'stop', 'restart'] as const) {
  t.test(`${action} asks the daemon once and says it was accepted`, async (t) => {
    const fake = new FakeController();
    const socket = await startApi(t, fake);
    const { code, stdout } = await runCli([action], { LINUXKIT_SOCKET: socket });
    t.equal(code, 0);
    t.equal(stdout, `${action} accepted (builder running, VM pid 1234)\n`);
    t.same(fake.calls, [action]);
  });
}

t.test('restart refused with a conflict exits 1 with the daemon message', async (t) => {
  const fake = new FakeController({ state: 'stopping', healthy: false });
  fake.failWith('restart', new ConflictError('a stop is in progress; start after it finishes'));
  const socket = await startApi(t, fake);
  const { code, stderr } = await runCli(['restart'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 1);
  t.equal(stderr, 'linuxkitctl: conflict: a stop is in progress; start after it finishes\n');
});

t.test(
  'restart --wait returns once the builder is healthy on a new VM, not on the old healthy one',
  async (t) => {
    const fake = new FakeController();
    const newVm = {
      pid: 5678,
      startedAt: new Date().toISOString(),
      adopted: false,
      readyAt: null,
      bootToReadyMs: null,
    };
    // restart() answers with the old VM still healthy; the new one comes later.
    fake.restartSteps = [
      { afterMs: 100, patch: { state: 'stopping', healthy: false } },
      { afterMs: 300, patch: { state: 'starting', vm: newVm, restarts: 1 } },
      { afterMs: 600, patch: { state: 'running', healthy: true } },
    ];
    const socket = await startApi(t, fake);
    const { code, stdout, stderr } = await runCli(['restart', '--wait', '--timeout', '30'], {
      LINUXKIT_SOCKET: socket,
    });
    t.equal(code, 0);
    t.equal(stderr, 'waiting up to 30 s for the builder to be healthy...\n');
    const [accepted, final] = stdout.trimEnd().split('\n');
    t.equal(accepted, 'restart accepted (builder running, VM pid 1234)');
    t.match(
      final,
      /^builder: running \(healthy\) {2}backend qemu\/tcg {2}guest x86_64 {2}pid 5678 up \S+ {2}restarts 1/,
    );
    t.equal(fake.current.vm.pid, 5678);
  },
);

t.test('restart --wait exits 4 when no new VM becomes healthy in time', async (t) => {
  const fake = new FakeController(); // the old VM stays healthy: that must not count
  const socket = await startApi(t, fake);
  const { code, stderr } = await runCli(['restart', '--wait', '--timeout', '1'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 4);
  t.match(stderr, 'linuxkitctl: restart: not healthy on a new VM after 1 s (state running)');
});

t.test('restart --wait exits 4 at once when the builder fails', async (t) => {
  const fake = new FakeController();
  fake.restartSteps = [
    {
      afterMs: 100,
      patch: {
        state: 'starting',
        healthy: false,
        vm: { pid: null, startedAt: null, adopted: false, readyAt: null, bootToReadyMs: null },
      },
    },
    { afterMs: 200, patch: { state: 'failed', failedReason: 'qemu exited at once: cannot open kernel' } },
  ];
  const socket = await startApi(t, fake);
  const { code, stderr } = await runCli(['restart', '--wait', '--timeout', '60'], {
    LINUXKIT_SOCKET: socket,
  });
  t.equal(code, 4);
  t.match(stderr, 'linuxkitctl: restart: the builder failed: qemu exited at once: cannot open kernel');
});

t.test('start --wait on a builder that is already healthy returns at once', async (t) => {
  const socket = await startApi(t, new FakeController());
  const { code, stdout } = await runCli(['start', '--wait'], { LINUXKIT_SOCKET: socket });
  t.equal(code, 0);
  t.match(stdout, /\nbuilder: running \(healthy\)/);
});

t.test('logs prints the last lines of the chosen source', async (t) => {
  const fake = new FakeController();
  fake.logLines.daemon = ['daemon 1', 'daemon 2'];
  fake.logLines.console = ['console 1', 'console 2', 'console 3'];
  const socket = await startApi(t, fake);
  const daemon = await runCli(['logs'], { LINUXKIT_SOCKET: socket });
  t.equal(daemon.code, 0);
  t.equal(daemon.stdout, 'daemon 1\ndaemon 2\n');
  const console = await runCli(['logs', '--source', 'console', '--lines', '2'], { LINUXKIT_SOCKET: socket });
  t.equal(console.stdout, 'console 2\nconsole 3\n');
  const json = await runCli(['logs', '--json', '-n', '1'], { LINUXKIT_SOCKET: socket });
  t.same(JSON.parse(json.stdout), { source: 'daemon', lines: ['daemon 2'] });
  t.same(fake.calls, ['logs daemon:200', 'logs console:2', 'logs daemon:1']);
});

t.test('logs rejects a bad --lines or --source before asking the daemon', async (t) => {
  const fake = new FakeController();
  const socket = await startApi(t, fake);
  const lines = await runCli(['logs', '--lines', '0'], { LINUXKIT_SOCKET: socket });
  t.equal(lines.code, 1);
  t.match(lines.stderr, 'linuxkitctl: --lines must be a whole number from 1 to 10000, not "0"');
  const source = await runCli(['logs', '--source', 'kernel'], { LINUXKIT_SOCKET: socket });
  t.equal(source.code, 1);
  t.match(source.stderr, 'linuxkitctl: --source must be console or daemon, not "kernel"');
  t.same(fake.calls, []);
});

t.test('logs -f prints new lines as they are written and exits 0 when interrupted', async (t) => {
  const fake = new FakeController();
  fake.logLines.daemon = ['old 1', 'old 2', 'old 3'];
  const socket = await startApi(t, fake);
  const child = spawnCli(['logs', '-f', '--lines', '2'], { LINUXKIT_SOCKET: socket });
  await until(() => child.output.stdout === 'old 2\nold 3\n', 'the last two lines');
  fake.logLines.daemon.push('new 1', 'new 2');
  await until(() => child.output.stdout.includes('new 2\n'), 'the new lines');
  child.kill('SIGINT');
  const { code, stdout } = await child.exited;
  t.equal(code, 0);
  t.equal(stdout, 'old 2\nold 3\nnew 1\nnew 2\n', 'each line once, in order');
});

t.test('events prints each event and stops cleanly on interrupt, leaving no listener', async (t) => {
  const fake = new FakeController();
  const socket = await startApi(t, fake);
  const child = spawnCli(['events'], { LINUXKIT_SOCKET: socket });
  await until(() => child.output.stdout.includes('current state: running (healthy)'), 'the initial event');
  fake.set({ state: 'stopping', healthy: false }, 'stop requested');
  await until(() => child.output.stdout.includes('stop requested'), 'the streamed event');
  t.match(child.output.stdout, /\n\S+ {2}state {4}running -> stopping {2}stop requested\n/);
  child.kill('SIGINT');
  t.equal((await child.exited).code, 0);
  await until(() => fake.listenerCount() === 0, 'the server to drop the listener');
  t.equal(fake.listenerCount(), 0);
});

t.test('events --json prints one JSON document per line', async (t) => {
  const fake = new FakeController();
  const socket = await startApi(t, fake);
  const child = spawnCli(['events', '--json'], { LINUXKIT_SOCKET: socket });
  await until(() => child.output.stdout.includes('\n'), 'the initial event');
  fake.set({ state: 'degraded', healthy: false }, 'probe failed twice');
  await until(() => child.output.stdout.split('\n').length > 2, 'the second event');
  child.kill('SIGINT');
  await child.exited;
  const events = child.output.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  t.match(events[0], { type: 'state', initial: true, status: { state: 'running' } });
  t.match(events[1], { type: 'state', from: 'running', state: 'degraded', message: 'probe failed twice' });
});

t.test('version prints both versions, and still exits 0 without a daemon', async (t) => {
  const socket = await startApi(t, new FakeController());
  const up = await runCli(['version'], { LINUXKIT_SOCKET: socket });
  t.equal(up.code, 0);
  t.equal(up.stdout, `linuxkitctl 0.1.0\nlinuxkitd ${sampleStatus().daemon.version} (pid 99)\n`);
  const down = await runCli(['version'], { LINUXKIT_SOCKET: tempSocketPath(t) });
  t.equal(down.code, 0);
  t.match(down.stdout, /^linuxkitctl 0\.1\.0\nlinuxkitd is not reachable at /);
});

t.test("--version and -V print linuxkitctl's version alone and ask no daemon", async (t) => {
  const fake = new FakeController();
  const socket = await startApi(t, fake);
  for (const flag of ['--version', '-V']) {
    const { code, stdout, stderr } = await runCli([flag], { LINUXKIT_SOCKET: socket });
    t.equal(code, 0);
    t.equal(stderr, '');
    t.equal(stdout, 'linuxkitctl 0.1.0\n');
  }
  t.same(fake.calls, [], 'nothing reached the daemon');
});

t.test('help lists the commands and exit codes, with the default socket path', async (t) => {
  for (const args of [['help'], [], ['--help']]) {
    const { code, stdout } = await runCli(args);
    t.equal(code, 0);
    for (const command of [
      'status',
      'health',
      'start',
      'stop',
      'restart',
      'logs',
      'events',
      'version',
      'help',
    ]) {
      t.match(stdout, new RegExp(`\\n {2}${command}\\b`), `mentions ${command}`);
    }
    t.match(
      stdout,
      /Exit codes:\n {2}0 {2}ok\n {2}1 {2}error.*\n {2}3 {2}the daemon is not reachable.*\n {2}4 {2}the builder is not healthy/,
    );
    const uid = process.getuid?.() ?? -1;
    t.match(stdout, `here: ${defaultSocketPath(process.platform, uid, process.env.HOME ?? '')}`);
  }
});

t.test('bad usage exits 1 with a message naming what was wrong', async (t) => {
  const cases: Array<[string[], string]> = [
    [
      ['frobnicate'],
      'linuxkitctl: unknown command "frobnicate"; commands: status, health, start, stop, restart, logs, events, disk, version, help',
    ],
    [['status', '--bogus'], 'linuxkitctl: unknown option --bogus'],
    [['stop', '--lines', '3'], 'linuxkitctl: --lines is not an option of stop (it takes --json)'],
    [['status', 'now'], 'linuxkitctl: status takes no arguments, got "now"'],
    [['restart', '--timeout', '5'], 'linuxkitctl: --timeout only applies with --wait'],
    [
      ['restart', '--wait', '--timeout', 'soon'],
      'linuxkitctl: --timeout must be a positive number, not "soon"',
    ],
    [['logs', '-f', '--json'], 'linuxkitctl: --json cannot be combined with -f'],
  ];
  const fake = new FakeController();
  const socket = await startApi(t, fake);
  for (const [args, message] of cases) {
    const { code, stderr } = await runCli(args, { LINUXKIT_SOCKET: socket });
    t.equal(code, 1, args.join(' '));
    t.equal(stderr.split('\n')[0], message);
  }
  t.same(fake.calls, [], 'nothing reached the daemon');
});
