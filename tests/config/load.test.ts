import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  applyOverrides,
  defaultConfig,
  loadConfigFile,
  parseConfig,
  resolveConfig,
  type HostInfo,
} from '../../daemon/config/load.js';
import type { ConfigResult, DaemonConfig } from '../../daemon/config/schema.js';

const linux: HostInfo = { platform: 'linux', arch: 'x64' };
const appleSilicon: HostInfo = { platform: 'darwin', arch: 'arm64' };
const intelMac: HostInfo = { platform: 'darwin', arch: 'x64' };

function config(r: ConfigResult): DaemonConfig {
  if (!r.ok) throw new Error(`expected a valid config, got ${JSON.stringify(r.errors)}`);
  return r.config;
}

t.test('an empty object gives every default', async (t) => {
  t.same(config(parseConfig('{}', 'config.json', linux)), {
    backend: 'auto',
    accel: 'auto',
    arch: 'x86_64',
    cpus: 2,
    memoryMiB: 2048,
    diskGiB: 0,
    ephemeral: false,
    guestAslr: 'auto',
    sshPort: 31122,
    mode: 'always',
    onDemand: { idleStopAfterMs: 900_000, connectTimeoutMs: 600_000 },
    sshUser: 'root',
    image: { debian: { suites: ['bookworm', 'bookworm-updates', 'bookworm-security'] } },
    systems: ['x86_64-linux'],
    supportedFeatures: ['benchmark', 'big-parallel'],
    maxJobs: 2,
    speedFactor: 1,
    restart: {
      initialDelayMs: 1000,
      maxDelayMs: 60000,
      multiplier: 2,
      jitter: 0.2,
      maxAttempts: 5,
      stablePeriodMs: 60000,
    },
    probe: {
      intervalMs: 15000,
      nixIntervalMs: 300000,
      timeoutMs: 10000,
      bootGraceMs: 120000,
      degradedRestartMs: 180000,
    },
    stopGraceMs: 20000,
    onSigterm: 'stop',
    gc: { minFreeMiB: 256, maxFreeMiB: 1024 },
  });
});

t.test('the effective config lists keys in schema order', async (t) => {
  const c = config(parseConfig('{"gc": {"maxFreeMiB": 2048}, "cpus": 4}', 'config.json', linux));
  t.same(Object.keys(c).slice(0, 4), ['backend', 'accel', 'arch', 'cpus']);
  t.same(Object.keys(c.gc), ['minFreeMiB', 'maxFreeMiB']);
});

t.test('host-dependent and derived defaults', async (t) => {
  const cases: Array<[string, HostInfo, string, Partial<DaemonConfig>]> = [
    ['linux host defaults to x86_64', linux, '{}', { arch: 'x86_64', systems: ['x86_64-linux'] }],
    [
      'apple silicon defaults to aarch64',
      appleSilicon,
      '{}',
      { arch: 'aarch64', systems: ['aarch64-linux'] },
    ],
    ['intel mac defaults to x86_64', intelMac, '{}', { arch: 'x86_64', systems: ['x86_64-linux'] }],
    [
      'linux arm64 host still defaults to x86_64',
      { platform: 'linux', arch: 'arm64' },
      '{}',
      { arch: 'x86_64' },
    ],
    ['systems follow an explicit arch', linux, '{"arch": "aarch64"}', { systems: ['aarch64-linux'] }],
    ['maxJobs follows cpus', linux, '{"cpus": 6}', { cpus: 6, maxJobs: 6 }],
    ['an explicit maxJobs wins', linux, '{"cpus": 6, "maxJobs": 2}', { maxJobs: 2 }],
    [
      'nested objects get the missing defaults',
      linux,
      '{"restart": {"maxAttempts": 9}}',
      {
        restart: {
          initialDelayMs: 1000,
          maxDelayMs: 60000,
          multiplier: 2,
          jitter: 0.2,
          maxAttempts: 9,
          stablePeriodMs: 60000,
        },
      },
    ],
    [
      'image fields are kept as given',
      linux,
      '{"image": {"kernel": "/k", "cmdline": "console=ttyS0"}}',
      {
        image: {
          kernel: '/k',
          cmdline: 'console=ttyS0',
          debian: { suites: ['bookworm', 'bookworm-updates', 'bookworm-security'] },
        },
      },
    ],
    [
      'image.debian mirrors are kept as given',
      linux,
      '{"image": {"debian": {"mirror": "http://m.example/debian", "suites": ["trixie"]}}}',
      {
        image: { debian: { mirror: 'http://m.example/debian', suites: ['trixie'] } },
      },
    ],
  ];
  for (const [name, host, text, expected] of cases) {
    t.match(config(parseConfig(text, 'config.json', host)), expected, name);
  }
});

t.test('invalid settings name the key, what is allowed and what was found', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['{"backend": "kvm"}', 'backend', "backend must be one of auto, qemu, hyperkit; got 'kvm'"],
    ['{"accel": "whpx"}', 'accel', "accel must be one of auto, hvf, kvm, tcg; got 'whpx'"],
    ['{"arch": "arm64"}', 'arch', "arch must be one of x86_64, aarch64; got 'arm64'"],
    ['{"guestAslr": true}', 'guestAslr', 'guestAslr must be one of auto, on, off; got true'],
    ['{"cpus": 0}', 'cpus', 'cpus must be an integer between 1 and 64; got 0'],
    ['{"cpus": 2.5}', 'cpus', 'cpus must be an integer between 1 and 64; got 2.5'],
    ['{"cpus": "4"}', 'cpus', "cpus must be an integer between 1 and 64; got '4'"],
    ['{"cpus": 1e400}', 'cpus', 'cpus must be an integer between 1 and 64; got Infinity'],
    ['{"memoryMiB": 100}', 'memoryMiB', 'memoryMiB must be an integer between 256 and 262144; got 100'],
    ['{"diskGiB": -1}', 'diskGiB', 'diskGiB must be an integer between 0 and 2048; got -1'],
    ['{"sshPort": 22}', 'sshPort', 'sshPort must be an integer between 1024 and 65535; got 22'],
    ['{"sshUser": "Root User"}', 'sshUser', "sshUser must be a string like 'root'; got 'Root User'"],
    ['{"onSigterm": "kill"}', 'onSigterm', "onSigterm must be one of stop, leave; got 'kill'"],
    [
      '{"restart": {"jitter": 1.5}}',
      'restart.jitter',
      'restart.jitter must be a number between 0 and 1; got 1.5',
    ],
    [
      '{"restart": {"maxAttempts": 0}}',
      'restart.maxAttempts',
      'restart.maxAttempts must be an integer between 1 and 1000; got 0',
    ],
    ['{"restart": 5}', 'restart', 'restart must be an object; got 5'],
    [
      '{"probe": {"intervalMs": 10}}',
      'probe.intervalMs',
      'probe.intervalMs must be an integer between 1000 and 3600000; got 10',
    ],
    [
      '{"image": {"kernel": "bzImage"}}',
      'image.kernel',
      "image.kernel must be an absolute path; got 'bzImage'",
    ],
    ['{"systems": []}', 'systems', 'systems must list at least 1 item; got []'],
    [
      '{"systems": "x86_64-linux"}',
      'systems',
      "systems must be a list of strings like 'x86_64-linux'; got 'x86_64-linux'",
    ],
    [
      '{"systems": ["x86_64-linux", "x86"]}',
      'systems[1]',
      "systems[1] must be a string like 'x86_64-linux'; got 'x86'",
    ],
    [
      '{"systems": ["x86_64-linux", "x86_64-linux"]}',
      'systems',
      'systems must not list the same item twice; got ["x86_64-linux","x86_64-linux"]',
    ],
    [
      '{"supportedFeatures": ["big parallel"]}',
      'supportedFeatures[0]',
      "supportedFeatures[0] must be a string like 'big-parallel'; got 'big parallel'",
    ],
    ['{"cpu": 4}', 'cpu', "unknown key 'cpu' (did you mean 'cpus'?)"],
    ['{"memory": 4096}', 'memory', "unknown key 'memory' (did you mean 'memoryMiB'?)"],
    ['{"Backend": "qemu"}', 'Backend', "unknown key 'Backend' (did you mean 'backend'?)"],
    [
      '{"restart": {"maxDelay": 5}}',
      'restart.maxDelay',
      "unknown key 'restart.maxDelay' (did you mean 'restart.maxDelayMs'?)",
    ],
    ['{"gc": {"x": 1}}', 'gc.x', "unknown key 'gc.x'; known keys of gc: minFreeMiB, maxFreeMiB"],
    ['[1, 2]', '', 'the config must be a JSON object such as {"cpus": 4}; got [1,2]'],
    ['"hello"', '', `the config must be a JSON object such as {"cpus": 4}; got 'hello'`],
  ];
  for (const [text, key, message] of cases) {
    t.same(parseConfig(text, 'config.json', linux), { ok: false, errors: [{ key, message }] }, text);
  }
});

t.test('an unknown key far from every known one lists the known keys', async (t) => {
  const r = parseConfig('{"zzzzzz": 1}', 'config.json', linux);
  t.equal(r.ok, false);
  if (!r.ok) t.match(r.errors[0].message, /^unknown key 'zzzzzz'; known keys: backend, accel, arch, cpus, /);
});

t.test('every invalid key is reported, not only the first', async (t) => {
  const r = parseConfig('{"cpus": 0, "memoryMiB": 1, "restart": {"multiplier": 0}}', 'config.json', linux);
  t.same(r.ok ? [] : r.errors.map((e) => e.key), ['cpus', 'memoryMiB', 'restart.multiplier']);
});

t.test('an invalid cpus does not also blame the maxJobs derived from it', async (t) => {
  const r = parseConfig('{"cpus": 100}', 'config.json', linux);
  t.same(r.ok ? [] : r.errors.map((e) => e.key), ['cpus']);
});

t.test('cross-field checks', async (t) => {
  const cases: Array<[string, string, string]> = [
    [
      '{"restart": {"initialDelayMs": 5000, "maxDelayMs": 1000}}',
      'restart.maxDelayMs',
      'restart.maxDelayMs must be at least restart.initialDelayMs (5000); got 1000',
    ],
    [
      '{"probe": {"intervalMs": 5000, "timeoutMs": 8000}}',
      'probe.intervalMs',
      'probe.intervalMs must be at least probe.timeoutMs (8000) so probes do not overlap; got 5000',
    ],
    [
      '{"probe": {"intervalMs": 60000, "nixIntervalMs": 30000}}',
      'probe.nixIntervalMs',
      'probe.nixIntervalMs must be at least probe.intervalMs (60000), as a Nix probe takes the place of an SSH check; got 30000',
    ],
    [
      '{"probe": {"degradedRestartMs": 1000}}',
      'probe.degradedRestartMs',
      'probe.degradedRestartMs must be at least probe.intervalMs (15000) so one failed probe does not restart the VM; got 1000',
    ],
    [
      '{"gc": {"minFreeMiB": 2048}}',
      'gc.maxFreeMiB',
      'gc.maxFreeMiB must be at least gc.minFreeMiB (2048); got 1024',
    ],
    [
      '{"backend": "hyperkit", "arch": "aarch64"}',
      'arch',
      "arch must be x86_64 with backend hyperkit (it runs only x86_64 guests); got 'aarch64'",
    ],
    [
      '{"backend": "hyperkit", "accel": "tcg"}',
      'accel',
      "accel must be auto or hvf with backend hyperkit; got 'tcg'",
    ],
    [
      '{"arch": "aarch64", "systems": ["x86_64-linux"]}',
      'systems',
      `systems must include 'aarch64-linux', the guest's own system (arch aarch64); got ["x86_64-linux"]`,
    ],
  ];
  for (const [text, key, message] of cases) {
    t.same(parseConfig(text, 'config.json', linux), { ok: false, errors: [{ key, message }] }, text);
  }
  t.ok(
    parseConfig('{"systems": ["x86_64-linux", "i686-linux"]}', 'c', linux).ok,
    'extra systems are allowed',
  );
  t.ok(
    parseConfig('{"restart": {"initialDelayMs": 5000, "maxDelayMs": 5000}}', 'c', linux).ok,
    'equal delays are allowed',
  );
});

t.test('JSON syntax errors carry the source, line and column', async (t) => {
  const r = parseConfig('{\n  "cpus": 4\n  "accel": "tcg"\n}\n', '/etc/linuxkit-nix/config.json', linux);
  t.same(r, {
    ok: false,
    errors: [
      {
        key: '',
        message: `/etc/linuxkit-nix/config.json:3:3: expected ',' or '}' after the value of "cpus" but found '"'`,
        line: 3,
        column: 3,
      },
    ],
  });
  const dup = parseConfig('{\n  "cpus": 4,\n  "cpus": 8\n}', 'c.json', linux);
  t.same(dup.ok ? [] : dup.errors, [
    {
      key: 'cpus',
      message: "c.json:3:3: duplicate key 'cpus': JSON would silently keep only the last one",
      line: 3,
      column: 3,
    },
  ]);
});

t.test('a UTF-8 byte order mark is accepted', async (t) => {
  t.equal(config(parseConfig('\ufeff{"cpus": 3}', 'c', linux)).cpus, 3);
});

t.test('defaults are fresh objects, never shared between results', async (t) => {
  const a = config(parseConfig('{}', 'c', linux));
  a.supportedFeatures.push('kvm');
  a.restart.maxAttempts = 99;
  const b = config(parseConfig('{}', 'c', linux));
  t.same(b.supportedFeatures, ['benchmark', 'big-parallel']);
  t.equal(b.restart.maxAttempts, 5);
});

t.test('resolveConfig does not modify its input', async (t) => {
  const raw = { cpus: 4, restart: { maxAttempts: 2 } };
  config(resolveConfig(raw, linux));
  t.same(raw, { cpus: 4, restart: { maxAttempts: 2 } });
});

t.test('defaultConfig equals parsing an empty object', async (t) => {
  t.same(defaultConfig(appleSilicon), config(parseConfig('{}', 'c', appleSilicon)));
});

t.test('loadConfigFile reads a file and names the path when it cannot', async (t) => {
  const dir = t.testdir({ 'config.json': '{"cpus": 3}', 'bad.json': '{"cpus": 0}', sub: {} });
  t.equal(config(await loadConfigFile(path.join(dir, 'config.json'), linux)).cpus, 3);
  t.same(await loadConfigFile(path.join(dir, 'bad.json'), linux), {
    ok: false,
    errors: [{ key: 'cpus', message: 'cpus must be an integer between 1 and 64; got 0' }],
  });
  const missing = path.join(dir, 'missing.json');
  const r = await loadConfigFile(missing, linux);
  t.same(r, {
    ok: false,
    errors: [
      {
        key: '',
        message: `config file ${missing} does not exist; create it (an empty object {} means all defaults) or pass --config FILE`,
      },
    ],
  });
  const asDir = await loadConfigFile(path.join(dir, 'sub'), linux);
  t.match(asDir, { ok: false, errors: [{ key: '', message: /sub is a directory; expected a JSON file$/ }] });
  await fs.writeFile(path.join(dir, 'syntax.json'), '{\n,}');
  t.match(await loadConfigFile(path.join(dir, 'syntax.json'), linux), {
    ok: false,
    errors: [{ message: new RegExp(`^${path.join(dir, 'syntax.json')}:2:1: `) }],
  });
});

t.test('applyOverrides: flags win over the file, derived values follow', async (t) => {
  const base = config(parseConfig('{}', 'c', linux));
  const cases: Array<[string, DaemonConfig, Partial<DaemonConfig>, Partial<DaemonConfig>]> = [
    [
      'a plain override replaces the value',
      base,
      { memoryMiB: 4096, sshPort: 40000 },
      { memoryMiB: 4096, sshPort: 40000 },
    ],
    ['maxJobs that equalled cpus follows --cpus', base, { cpus: 8 }, { cpus: 8, maxJobs: 8 }],
    ['an explicit maxJobs stays', { ...base, cpus: 4, maxJobs: 1 }, { cpus: 8 }, { cpus: 8, maxJobs: 1 }],
    [
      'default systems follow --arch',
      base,
      { arch: 'aarch64' },
      { arch: 'aarch64', systems: ['aarch64-linux'] },
    ],
    ['an undefined override changes nothing', base, { cpus: undefined }, { cpus: 2 }],
  ];
  for (const [name, cfg, overrides, expected] of cases) {
    t.match(config(applyOverrides(cfg, overrides)), expected, name);
  }
  t.same(base.cpus, 2, 'the input config is not modified');
});

t.test('applyOverrides rejects a combination the file could not have', async (t) => {
  const custom = config(parseConfig('{"systems": ["x86_64-linux", "i686-linux"]}', 'c', linux));
  t.same(applyOverrides(custom, { arch: 'aarch64' }), {
    ok: false,
    errors: [
      {
        key: 'systems',
        message: `systems must include 'aarch64-linux', the guest's own system (arch aarch64); got ["x86_64-linux","i686-linux"]`,
      },
    ],
  });
  const base = config(parseConfig('{}', 'c', linux));
  t.match(applyOverrides(base, { backend: 'hyperkit', accel: 'kvm' }), {
    ok: false,
    errors: [{ key: 'accel' }],
  });
  t.match(applyOverrides(base, { cpus: 0 }), { ok: false, errors: [{ key: 'cpus' }] });
});
