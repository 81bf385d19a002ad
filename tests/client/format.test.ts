// linuxkitctl's wording, its default socket path, and how `logs -f` finds the new lines.
import t from 'tap';
import { newLinesSince } from '../../client/follow.js';
import {
  formatAccepted,
  formatDuration,
  formatEvent,
  formatHealth,
  formatStatus,
} from '../../client/format.js';
import { defaultSocketPath, resolveSocketPath } from '../../client/socket-path.js';
import { defaultPaths } from '../../daemon/config/paths.js';
import { sampleStatus } from '../api/fixtures/fake-controller.js';

const now = new Date('2025-01-01T00:05:00.000Z');

t.test('a healthy builder is one line: its time to ready beside the probe latency', async (t) => {
  t.equal(
    formatStatus(sampleStatus(), now),
    'builder: running (healthy)  backend qemu/tcg  guest x86_64  pid 1234 up 5m  ready in 5.2s  restarts 0  probe 612 ms  Nix 2.8.0',
  );
});

t.test('a builder in backoff shows why and when it starts next', async (t) => {
  const status = sampleStatus({
    state: 'backoff',
    healthy: false,
    vm: { pid: null, startedAt: null, adopted: false, readyAt: null, bootToReadyMs: null },
    restarts: 3,
    probe: {
      ok: false,
      check: null,
      latencyMs: null,
      sshLatencyMs: null,
      nixVersion: null,
      at: null,
      nixAt: null,
      error: null,
    },
    lastExit: { code: 1, signal: null, reason: 'exited with code 1', at: '2025-01-01T00:04:30.000Z' },
    backoff: { attempt: 3, nextStartAt: '2025-01-01T00:05:08.000Z' },
  });
  t.equal(
    formatStatus(status, now),
    [
      'builder: backoff (not healthy)  backend qemu/tcg  guest x86_64  no VM  restarts 3',
      '  backoff: attempt 3, next start in 8s',
      '  last exit: exited with code 1 (code 1) 30s ago',
    ].join('\n'),
  );
});

t.test('a stopped, failed or adopted builder says so', async (t) => {
  const stopped = formatStatus(sampleStatus({ state: 'stopped', healthy: false, desired: 'stopped' }), now);
  t.match(stopped, /\n {2}desired: stopped \(linuxkitctl start to run it again\)$/);
  const failed = formatStatus(
    sampleStatus({ state: 'failed', healthy: false, failedReason: '5 crashes in 10 minutes' }),
    now,
  );
  t.match(failed, /\n {2}failed: 5 crashes in 10 minutes$/);
  const adopted = formatStatus(
    sampleStatus({
      vm: {
        pid: 77,
        startedAt: '2024-12-30T22:00:00.000Z',
        adopted: true,
        readyAt: null,
        bootToReadyMs: null,
      },
    }),
    now,
  );
  t.match(adopted, /pid 77 \(adopted\) up 1d2h/);
});

t.test('on-demand mode says whether the builder is asleep or awake, and why', async (t) => {
  const onDemand = {
    awake: false,
    wokenBy: null,
    wokenAt: null,
    heldConnections: 0,
    openConnections: 0,
    lastActivityAt: null,
    idleStopAt: null,
    idleStopAfterMs: 900_000,
    lastFailure: null,
  };
  const asleep = formatStatus(
    sampleStatus({
      state: 'stopped',
      healthy: false,
      mode: 'on-demand',
      onDemand,
      vm: { pid: null, startedAt: null, adopted: false, readyAt: null, bootToReadyMs: null },
    }),
    now,
  );
  t.match(asleep, /\n {2}on demand: asleep: the next connection starts the VM$/);
  const awake = formatStatus(
    sampleStatus({
      mode: 'on-demand',
      onDemand: {
        ...onDemand,
        awake: true,
        wokenBy: 'a connection from 127.0.0.1:50412',
        wokenAt: new Date(now.getTime() - 180_000).toISOString(),
        idleStopAt: new Date(now.getTime() + 720_000).toISOString(),
        lastFailure: {
          at: new Date(now.getTime() - 3_600_000).toISOString(),
          reason: 'the builder was not ready within 600 s',
          connections: 1,
        },
      },
    }),
    now,
  );
  t.match(
    awake,
    /\n {2}on demand: awake \(woken by a connection from 127\.0\.0\.1:50412 3m ago\), idle stop in 12m\n/,
  );
  t.match(awake, /\n {2}on demand, last failure 1h ago: the builder was not ready within 600 s$/);
});

t.test('durations stay short', async (t) => {
  t.equal(formatDuration(42_000), '42s');
  t.equal(formatDuration(5 * 60_000 + 59_000), '5m');
  t.equal(formatDuration(2 * 3600_000 + 5 * 60_000), '2h5m');
  t.equal(formatDuration(3 * 3600_000), '3h');
  t.equal(formatDuration(3 * 86400_000 + 4 * 3600_000), '3d4h');
  t.equal(formatDuration(-5000), '0s', 'a clock skew never prints a negative time');
});

t.test('health, events and accepted actions', async (t) => {
  t.equal(formatHealth({ healthy: true, state: 'running' }), 'healthy (running)');
  t.equal(
    formatHealth({ healthy: false, state: 'starting', reason: 'starting: waiting for SSH' }),
    'not healthy (starting): starting: waiting for SSH',
  );
  t.equal(
    formatEvent({
      at: '2025-01-01T00:00:00.000Z',
      type: 'state',
      from: 'running',
      state: 'stopping',
      message: 'stop requested',
    }),
    '2025-01-01T00:00:00.000Z  state    running -> stopping  stop requested',
  );
  t.equal(
    formatEvent({ at: '2025-01-01T00:00:00.000Z', type: 'exit', message: 'guest powered off' }),
    '2025-01-01T00:00:00.000Z  exit     guest powered off',
  );
  t.equal(
    formatAccepted('stop', sampleStatus({ state: 'stopping' })),
    'stop accepted (builder stopping, VM pid 1234)',
  );
});

t.test(
  'the default socket: system daemon for root, Application Support on macOS, XDG state dir on Linux',
  async (t) => {
    t.equal(defaultSocketPath('linux', 0, '/root'), '/var/lib/linuxkit-nix/daemon.sock');
    t.equal(defaultSocketPath('darwin', 0, '/var/root'), '/var/lib/linuxkit-nix/daemon.sock');
    t.equal(
      defaultSocketPath('darwin', 501, '/Users/ada'),
      '/Users/ada/Library/Application Support/linuxkit-nix/daemon.sock',
    );
    t.equal(defaultSocketPath('linux', 1000, '/home/ada'), '/home/ada/.local/state/linuxkit-nix/daemon.sock');
    t.equal(
      defaultSocketPath('linux', 1000, '/home/ada', { XDG_STATE_HOME: '/srv/state' }),
      '/srv/state/linuxkit-nix/daemon.sock',
    );
    t.equal(
      defaultSocketPath('linux', 1000, '/home/ada', { XDG_STATE_HOME: 'rel' }),
      '/home/ada/.local/state/linuxkit-nix/daemon.sock',
      'a relative XDG_STATE_HOME is ignored',
    );
  },
);

t.test("the CLI's default socket is the daemon's default socket", async (t) => {
  const cases: Array<[NodeJS.Platform, number, string, { XDG_STATE_HOME?: string }]> = [
    ['linux', 0, '/root', {}],
    ['darwin', 0, '/var/root', {}],
    ['darwin', 501, '/Users/ada', {}],
    ['linux', 1000, '/home/ada', {}],
    ['linux', 1000, '/home/ada', { XDG_STATE_HOME: '/srv/state' }],
    ['linux', 1000, '/home/ada', { XDG_STATE_HOME: 'relative' }],
  ];
  for (const [platform, uid, home, env] of cases) {
    t.equal(
      defaultSocketPath(platform, uid, home, env),
      defaultPaths(platform, home, uid, env).socketPath,
      `${platform} uid ${uid} ${JSON.stringify(env)}`,
    );
  }
});

t.test('--socket wins over LINUXKIT_SOCKET, then LINUXKIT_NIX_STATE_DIR, then the default', async (t) => {
  const fallback = () => '/default.sock';
  t.equal(resolveSocketPath('/flag.sock', { LINUXKIT_SOCKET: '/env.sock' }, fallback), '/flag.sock');
  t.equal(
    resolveSocketPath(
      undefined,
      { LINUXKIT_SOCKET: '/env.sock', LINUXKIT_NIX_STATE_DIR: '/state' },
      fallback,
    ),
    '/env.sock',
  );
  t.equal(
    resolveSocketPath(undefined, { LINUXKIT_NIX_STATE_DIR: '/state/' }, fallback),
    '/state/daemon.sock',
  );
  t.equal(resolveSocketPath(undefined, {}, fallback), '/default.sock');
});

t.test('logs -f prints only what came after the previous answer', async (t) => {
  t.same(newLinesSince(['a', 'b', 'c'], ['a', 'b', 'c']), [], 'nothing new');
  t.same(newLinesSince(['a', 'b'], ['a', 'b', 'c', 'd']), ['c', 'd'], 'the log grew within the window');
  t.same(newLinesSince(['a', 'b', 'c'], ['c', 'd', 'e']), ['d', 'e'], 'the window slid');
  t.same(newLinesSince([], ['a']), ['a'], 'the first lines of an empty log');
  t.same(
    newLinesSince(['x', 'y'], ['boot 1', 'boot 2']),
    ['boot 1', 'boot 2'],
    'a new boot: everything is new',
  );
});
