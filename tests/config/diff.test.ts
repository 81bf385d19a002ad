import t from 'tap';
import { configChangeNeedsRestart, KEY_EFFECT } from '../../daemon/config/diff.js';
import { defaultConfig } from '../../daemon/config/load.js';
import { DaemonConfigSchema, type DaemonConfig } from '../../daemon/config/schema.js';

const base = defaultConfig({ platform: 'linux', arch: 'x64' });
const withChange = (change: (c: DaemonConfig) => void): DaemonConfig => {
  const c = structuredClone(base);
  change(c);
  return c;
};

t.test('changes that need a new VM', async (t) => {
  const cases: Array<[string, (c: DaemonConfig) => void, string[]]> = [
    ['backend', (c) => (c.backend = 'qemu'), ['backend']],
    ['accel', (c) => (c.accel = 'tcg'), ['accel']],
    ['arch (systems follow, live)', (c) => ((c.arch = 'aarch64'), (c.systems = ['aarch64-linux'])), ['arch']],
    ['cpus', (c) => (c.cpus = 4), ['cpus']],
    ['memoryMiB', (c) => (c.memoryMiB = 4096), ['memoryMiB']],
    ['diskGiB', (c) => (c.diskGiB = 20), ['diskGiB']],
    ['sshPort', (c) => (c.sshPort = 40022), ['sshPort']],
    ['image.kernel added', (c) => (c.image.kernel = '/k'), ['image.kernel']],
    [
      'image.cmdline and initrd',
      (c) => ((c.image.cmdline = 'quiet'), (c.image.initrd = '/i')),
      ['image.initrd', 'image.cmdline'],
    ],
  ];
  for (const [name, change, keys] of cases) {
    const diff = configChangeNeedsRestart(base, withChange(change));
    t.equal(diff.restart, true, name);
    t.same(diff.keys.sort(), keys.sort(), name);
  }
  const removed = configChangeNeedsRestart(
    withChange((c) => (c.image.kernel = '/k')),
    base,
  );
  t.same(removed, { restart: true, keys: ['image.kernel'], live: [] }, 'image.kernel removed');
});

t.test('changes applied live', async (t) => {
  const cases: Array<[string, (c: DaemonConfig) => void, string[]]> = [
    [
      'restart policy',
      (c) => ((c.restart.maxDelayMs = 120000), (c.restart.jitter = 0)),
      ['restart.maxDelayMs', 'restart.jitter'],
    ],
    ['probe', (c) => (c.probe.intervalMs = 30000), ['probe.intervalMs']],
    [
      'registration',
      (c) => ((c.systems = ['x86_64-linux', 'i686-linux']), (c.maxJobs = 8)),
      ['systems', 'maxJobs'],
    ],
    [
      'features and speed',
      (c) => ((c.supportedFeatures = ['kvm']), (c.speedFactor = 2)),
      ['supportedFeatures', 'speedFactor'],
    ],
    ['gc', (c) => (c.gc.minFreeMiB = 512), ['gc.minFreeMiB']],
    [
      'stop behaviour',
      (c) => ((c.stopGraceMs = 5000), (c.onSigterm = 'leave')),
      ['stopGraceMs', 'onSigterm'],
    ],
    ['ssh user', (c) => (c.sshUser = 'builder'), ['sshUser']],
    // The running VM keeps its store; the next start makes the fresh disk.
    ['ephemeral', (c) => (c.ephemeral = true), ['ephemeral']],
  ];
  for (const [name, change, live] of cases) {
    t.same(configChangeNeedsRestart(base, withChange(change)), { restart: false, keys: [], live }, name);
  }
});

t.test('a mixed change lists both kinds, and no change lists nothing', async (t) => {
  t.same(
    configChangeNeedsRestart(
      base,
      withChange((c) => ((c.cpus = 4), (c.maxJobs = 4))),
    ),
    { restart: true, keys: ['cpus'], live: ['maxJobs'] },
  );
  t.same(configChangeNeedsRestart(base, structuredClone(base)), { restart: false, keys: [], live: [] });
});

t.test('every setting in the schema says how a change takes effect', async (t) => {
  t.same(Object.keys(KEY_EFFECT).sort(), Object.keys(DaemonConfigSchema.properties).sort());
});
