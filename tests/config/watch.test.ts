import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../../daemon/fs/atomic-write.js';
import { applyOverrides, parseConfig, type HostInfo } from '../../daemon/config/load.js';
import type { DaemonConfig } from '../../daemon/config/schema.js';
import { ConfigWatcher, type ConfigWatcherEvents } from '../../daemon/config/watch.js';

const host: HostInfo = { platform: 'linux', arch: 'x64' };

function load(text: string, overrides: Partial<DaemonConfig> = {}): DaemonConfig {
  const r = parseConfig(text, 'test', host);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const o = applyOverrides(r.config, overrides);
  if (!o.ok) throw new Error(JSON.stringify(o.errors));
  return o.config;
}

type Seen = { [K in keyof ConfigWatcherEvents]: { type: K; event: ConfigWatcherEvents[K][0] } }[
  | 'change'
  | 'invalid'
  | 'recovered'];

// The next event of any kind, so a wrong kind fails the test instead of hanging it. The limit
// only turns a lost event into a failure; it is far above any real latency.
function nextEvent(w: ConfigWatcher, limitMs = 20_000): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const done = (seen: Seen) => {
      clearTimeout(timer);
      w.off('change', onChange);
      w.off('invalid', onInvalid);
      w.off('recovered', onRecovered);
      resolve(seen);
    };
    const onChange = (event: ConfigWatcherEvents['change'][0]) => done({ type: 'change', event });
    const onInvalid = (event: ConfigWatcherEvents['invalid'][0]) => done({ type: 'invalid', event });
    const onRecovered = (event: ConfigWatcherEvents['recovered'][0]) => done({ type: 'recovered', event });
    w.on('change', onChange);
    w.on('invalid', onInvalid);
    w.on('recovered', onRecovered);
    const timer = setTimeout(() => reject(new Error(`no config event within ${limitMs} ms`)), limitMs);
  });
}

async function started(t: Test, text: string, overrides: Partial<DaemonConfig> = {}) {
  const dir = t.testdir({ 'config.json': text, 'vm.json': '{}' });
  const file = path.join(dir, 'config.json');
  const w = new ConfigWatcher({ path: file, initial: load(text, overrides), overrides, host });
  t.teardown(() => w.close());
  await w.start();
  return { dir, file, w };
}

t.test('a valid edit emits change with the previous config and the diff', async (t) => {
  const { file, w } = await started(t, '{"cpus": 2}');
  const seen = nextEvent(w);
  await writeFileAtomic(file, '{"cpus": 4, "probe": {"intervalMs": 20000}}');
  const got = await seen;
  t.equal(got.type, 'change');
  if (got.type !== 'change') return;
  t.equal(got.event.config.cpus, 4);
  t.equal(got.event.previous.cpus, 2);
  t.same(got.event.diff, { restart: true, keys: ['cpus'], live: ['maxJobs', 'probe.intervalMs'] });
  t.equal(w.current.cpus, 4);
  t.equal(w.lastError, null);
});

t.test('an edit in place (same inode, no truncation) is seen', async (t) => {
  const { file, w } = await started(t, '{"cpus": 2}');
  const seen = nextEvent(w);
  const handle = await fs.open(file, 'r+');
  await handle.write('{"cpus": 6}', 0);
  await handle.close();
  const got = await seen;
  t.match(got, { type: 'change', event: { config: { cpus: 6 } } });
});

t.test('an invalid edit keeps the last good config; fixing it emits change again', async (t) => {
  const { file, w } = await started(t, '{"cpus": 2}');
  const good = w.current;

  let seen = nextEvent(w);
  await writeFileAtomic(file, '{"cpus": 4, "restart": {"maxDelayMs": -1}}');
  let got = await seen;
  t.equal(got.type, 'invalid');
  if (got.type === 'invalid') {
    t.same(got.event.errors, [
      {
        key: 'restart.maxDelayMs',
        message: 'restart.maxDelayMs must be an integer between 0 and 86400000; got -1',
      },
    ]);
  }
  t.equal(w.current, good, 'current is still the last good config');
  t.match(w.lastError, { errors: [{ key: 'restart.maxDelayMs' }] });

  seen = nextEvent(w);
  await writeFileAtomic(file, '{"cpus": 4}');
  got = await seen;
  t.match(got, { type: 'change', event: { config: { cpus: 4 }, previous: { cpus: 2 } } });
  t.equal(w.lastError, null);
});

t.test('a JSON syntax error is reported with its position', async (t) => {
  const { file, w } = await started(t, '{"cpus": 2}');
  const seen = nextEvent(w);
  await writeFileAtomic(file, '{\n  "cpus": 4,\n}');
  t.match(await seen, { type: 'invalid', event: { errors: [{ key: '', line: 3, column: 1 }] } });
  t.equal(w.current.cpus, 2);
});

t.test('returning to the config in force after an invalid edit emits recovered, not change', async (t) => {
  const { file, w } = await started(t, '{"cpus": 2}');
  let seen = nextEvent(w);
  await writeFileAtomic(file, '{"cpus": 0}');
  t.match(await seen, { type: 'invalid' });
  seen = nextEvent(w);
  await writeFileAtomic(file, '{"cpus": 2}');
  t.match(await seen, { type: 'recovered', event: { config: { cpus: 2 } } });
  t.equal(w.lastError, null);
});

t.test('replacing the file by rename (editor style) is seen, repeatedly', async (t) => {
  const { dir, file, w } = await started(t, '{"cpus": 2}');
  for (const cpus of [3, 5]) {
    const seen = nextEvent(w);
    const temp = path.join(dir, `config.json.swp${cpus}`);
    await fs.writeFile(temp, JSON.stringify({ cpus }));
    await fs.rename(temp, file);
    t.match(await seen, { type: 'change', event: { config: { cpus } } }, `cpus ${cpus}`);
  }
});

t.test('a deleted file is invalid until it comes back', async (t) => {
  const { file, w } = await started(t, '{"cpus": 2}');
  let seen = nextEvent(w);
  await fs.unlink(file);
  const got = await seen;
  t.match(got, {
    type: 'invalid',
    event: {
      errors: [
        {
          key: '',
          message: `config file ${file} does not exist; create it (an empty object {} means all defaults) or pass --config FILE`,
        },
      ],
    },
  });
  t.equal(w.current.cpus, 2);
  seen = nextEvent(w);
  await fs.writeFile(file, '{"cpus": 3}');
  t.match(await seen, { type: 'change', event: { config: { cpus: 3 } } });
});

t.test('flags keep overriding the file on every reload', async (t) => {
  const { file, w } = await started(t, '{"cpus": 2}', { cpus: 8 });
  t.equal(w.current.cpus, 8);
  const seen = nextEvent(w);
  await writeFileAtomic(file, '{"cpus": 3, "memoryMiB": 4096}');
  const got = await seen;
  t.match(got, { type: 'change', event: { config: { cpus: 8, memoryMiB: 4096 } } });
  if (got.type === 'change') t.same(got.event.diff.keys, ['memoryMiB'], 'the overridden cpus did not change');
});

t.test('reload() re-reads on demand without any file event', async (t) => {
  const dir = t.testdir({ 'config.json': '{"cpus": 2}' });
  const file = path.join(dir, 'config.json');
  // Not started: no file watching at all, as after SIGHUP with events lost.
  const w = new ConfigWatcher({ path: file, initial: load('{"cpus": 2}'), host });
  t.teardown(() => w.close());
  await fs.writeFile(file, '{"cpus": 4}');
  const emitted: string[] = [];
  w.on('change', () => emitted.push('change'));
  w.on('invalid', () => emitted.push('invalid'));
  const outcome = await w.reload();
  t.match(outcome, { kind: 'changed', config: { cpus: 4 }, previous: { cpus: 2 }, diff: { keys: ['cpus'] } });
  t.same(await w.reload(), { kind: 'unchanged', config: w.current }, 'a second reload finds nothing new');
  await fs.writeFile(file, '{"cpus": "many"}');
  t.match(await w.reload(), { kind: 'invalid', errors: [{ key: 'cpus' }] });
  t.same(emitted, ['change', 'invalid']);
  t.equal(w.current.cpus, 4);
});

t.test('concurrent reloads run in order and report consistent previous configs', async (t) => {
  const dir = t.testdir({ 'config.json': '{"cpus": 3}' });
  const file = path.join(dir, 'config.json');
  const w = new ConfigWatcher({ path: file, initial: load('{"cpus": 2}'), host });
  t.teardown(() => w.close());
  const [a, b] = await Promise.all([w.reload(), w.reload()]);
  t.match(a, { kind: 'changed', previous: { cpus: 2 }, config: { cpus: 3 } });
  t.match(b, { kind: 'unchanged' });
});

t.test('close() stops watching and is safe to call twice', async (t) => {
  const { w } = await started(t, '{"cpus": 2}');
  await w.close();
  await w.close();
  t.pass('closed');
});
