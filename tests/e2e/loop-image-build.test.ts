// A loop that never waits, while the daemon builds the guest image (a cold image cache in a temp
// folder makes the first start build it): GET /v1/status is sampled back to back, a config edit is
// seen at once, and a stop asked for mid-build is accepted at once and ends that start without a
// VM once the build is done. Timings are reported as figures, with a loose bound.
import t from 'tap';
import { readdir } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { requireTool, tempDir } from '../helpers/env.js';
import { startTestDaemon } from '../helpers/daemon-process.js';
import { FAST_TEST_CONFIG, QemuWatch, killQemus, readConfig, recordEvents, waitForEvent, writeConfig } from '../reliability/vm-helpers.js';
import { statusSampler } from './status-sampler.js';

requireTool('qemu-system-x86_64');

const BUILD_MS = 600_000;
const stateDir = await tempDir('build');
const coldCache = await tempDir('cold-images');
await writeConfig(stateDir, FAST_TEST_CONFIG);
const daemon = await startTestDaemon({ stateDir, env: { LINUXKIT_IMAGE_CACHE: coldCache }, readyTimeoutMs: 120_000 });
const watch = new QemuWatch(stateDir, 100);
t.teardown(() => {
  watch.stop();
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});
const rec = recordEvents(daemon);
t.teardown(() => rec.close());

t.test('during an image build the daemon answers at once, sees a config edit, and a stop cancels the start', async (t) => {
  const sampler = statusSampler(daemon.client);
  const first = await daemon.client.status();
  t.match(first, { state: 'starting', vm: { pid: null } }, 'starting: the image is being built');
  // The build has begun once its folder appears in the cold cache.
  const buildingSince = Date.now();
  for (;;) {
    const names = await readdir(coldCache);
    if (names.some((n) => n.startsWith('.build-'))) break;
    if (Date.now() - buildingSince > BUILD_MS) throw new Error(`no build started in ${coldCache}: ${names.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 3000));

  const config = await readConfig(stateDir);
  const editedAt = Date.now();
  await writeConfig(stateDir, { ...config, memoryMiB: 1100 });
  const configEvent = await waitForEvent(rec, (e) => e.type === 'config', 10_000, 'the config event');
  t.comment(`config change seen ${Date.parse(configEvent.at) - editedAt} ms after the edit, mid-build`);

  const t0 = performance.now();
  const stop = await daemon.client.stop();
  const stopMs = performance.now() - t0;
  t.match(stop.status, { state: 'stopping', desired: 'stopped', vm: { pid: null } }, 'stop accepted mid-build');
  t.comment(`stop accepted in ${stopMs.toFixed(1)} ms`);
  t.ok(stopMs < 1000);
  t.ok((await readdir(coldCache)).some((n) => n.startsWith('.build-')), 'and the build is still running');

  const stopped = await daemon.waitFor((s) => s.state === 'stopped', BUILD_MS, 'stopped once the build is done');
  const figures = sampler.stop();
  t.equal(stopped.vm.pid, null);
  t.equal(watch.max, 0, 'no QEMU was ever spawned for the cancelled start');
  const images = (await readdir(coldCache)).filter((n) => /^[0-9a-f]{24}$/.test(n));
  t.equal(images.length, 1, 'the image built meanwhile is kept in the cache');
  t.comment(`build ran for about ${((Date.now() - buildingSince) / 1000).toFixed(0)} s`);
  t.comment(
    `GET /v1/status during the image build: ${figures.count} answers, slowest ${figures.maxMs.toFixed(1)} ms, ` +
      `p99 ${figures.p99Ms.toFixed(1)} ms, median ${figures.medianMs.toFixed(1)} ms`,
  );
  t.equal(figures.errors, 0, 'every status call answered');
  t.ok(figures.maxMs < 50, `slowest status answer ${figures.maxMs.toFixed(1)} ms (goal: under 50 ms)`);
});
