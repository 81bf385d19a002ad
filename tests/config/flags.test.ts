import t from 'tap';
import { DAEMON_USAGE, parseDaemonArgs, type DaemonArgs } from '../../daemon/config/flags.js';

const none: DaemonArgs = { paths: {}, overrides: {}, foreground: false, version: false, help: false };

t.test('valid command lines', async (t) => {
  const cases: Array<[string[], DaemonArgs]> = [
    [[], none],
    [['--foreground'], { ...none, foreground: true }],
    [['--version'], { ...none, version: true }],
    [['-V'], { ...none, version: true }],
    [['-h'], { ...none, help: true }],
    [['--help'], { ...none, help: true }],
    [
      ['--config', '/etc/l/config.json', '--state-dir=/var/lib/l', '--socket', 'rel/d.sock'],
      { ...none, paths: { config: '/etc/l/config.json', stateDir: '/var/lib/l', socket: 'rel/d.sock' } },
    ],
    [
      [
        '--backend',
        'qemu',
        '--accel',
        'tcg',
        '--arch',
        'aarch64',
        '--cpus',
        '4',
        '--memory',
        '4096',
        '--ssh-port',
        '40022',
      ],
      {
        ...none,
        overrides: {
          backend: 'qemu',
          accel: 'tcg',
          arch: 'aarch64',
          cpus: 4,
          memoryMiB: 4096,
          sshPort: 40022,
        },
      },
    ],
    [['--cpus=8'], { ...none, overrides: { cpus: 8 } }],
  ];
  for (const [argv, args] of cases) {
    t.same(parseDaemonArgs(argv), { ok: true, args }, argv.join(' ') || '(no flags)');
  }
});

t.test('bad flag values get the same messages as the config file, naming the flag', async (t) => {
  const cases: Array<[string[], string, string]> = [
    [['--cpus', '0'], '--cpus', '--cpus must be an integer between 1 and 64; got 0'],
    [['--cpus', 'four'], '--cpus', "--cpus must be an integer between 1 and 64; got 'four'"],
    [['--cpus', '2.5'], '--cpus', "--cpus must be an integer between 1 and 64; got '2.5'"],
    [['--memory', '128'], '--memory', '--memory must be an integer between 256 and 262144; got 128'],
    [['--ssh-port', '22'], '--ssh-port', '--ssh-port must be an integer between 1024 and 65535; got 22'],
    [['--backend', 'kvm'], '--backend', "--backend must be one of auto, qemu, hyperkit; got 'kvm'"],
    [['--accel', 'whpx'], '--accel', "--accel must be one of auto, hvf, kvm, tcg; got 'whpx'"],
    [['--arch', 'arm64'], '--arch', "--arch must be one of x86_64, aarch64; got 'arm64'"],
  ];
  for (const [argv, key, message] of cases) {
    t.same(parseDaemonArgs(argv), { ok: false, errors: [{ key, message }] }, argv.join(' '));
  }
});

t.test('malformed command lines', async (t) => {
  const cases: Array<[string[], Array<{ key: string; message: string }>]> = [
    [['--cpu', '4'], [{ key: '--cpu', message: "unknown option '--cpu' (did you mean '--cpus'?)" }]],
    [
      ['--statedir', '/x'],
      [{ key: '--statedir', message: "unknown option '--statedir' (did you mean '--state-dir'?)" }],
    ],
    [['--frobnicate'], [{ key: '--frobnicate', message: "unknown option '--frobnicate'; see --help" }]],
    [['-x'], [{ key: '-x', message: "unknown option '-x'; see --help" }]],
    [
      ['--toString', '--constructor=1'],
      [
        { key: '--toString', message: "unknown option '--toString'; see --help" },
        { key: '--constructor', message: "unknown option '--constructor'; see --help" },
      ],
    ],
    [['--cpus'], [{ key: '--cpus', message: '--cpus needs a value' }]],
    [['--config='], [{ key: '--config', message: '--config needs a value' }]],
    [
      ['--cpus', '--memory', '4096'],
      [
        { key: '--cpus', message: "--cpus needs a value; got the option '--memory'" },
        { key: '4096', message: "unexpected argument '4096'; linuxkitd takes only options (see --help)" },
      ],
    ],
    [['--foreground=yes'], [{ key: '--foreground', message: "--foreground takes no value; got 'yes'" }]],
    [
      ['start'],
      [{ key: 'start', message: "unexpected argument 'start'; linuxkitd takes only options (see --help)" }],
    ],
    [
      ['--cpus', '0', '--arch', 'arm'],
      [
        { key: '--cpus', message: '--cpus must be an integer between 1 and 64; got 0' },
        { key: '--arch', message: "--arch must be one of x86_64, aarch64; got 'arm'" },
      ],
    ],
  ];
  for (const [argv, errors] of cases) {
    t.same(parseDaemonArgs(argv), { ok: false, errors }, argv.join(' '));
  }
});

t.test('the usage text lists every flag', async (t) => {
  for (const flag of [
    '--config',
    '--state-dir',
    '--socket',
    '--ssh-port',
    '--backend',
    '--accel',
    '--arch',
    '--cpus',
    '--memory',
    '--foreground',
    '--version',
    '--help',
  ]) {
    t.match(DAEMON_USAGE, flag);
  }
});
