// A config whose VM cannot boot (its kernel file is missing): the daemon backs off with growing
// delays, ends in `failed` with the reason instead of looping forever, keeps answering, and comes
// back to a healthy builder once the config is fixed, without a restart of the daemon.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StateEvent } from '../../daemon/controller.js';
import { pidsMatching, requireTool, tempDir } from '../helpers/env.js';
import { isHealthy, startTestDaemon } from '../helpers/daemon-process.js';
import { defaultConfig } from '../../daemon/config/load.js';
import { recordEvents } from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');

const stateDir = await tempDir('fail');
const configPath = join(stateDir, 'config.json');
const missingKernel = join(stateDir, 'no-such-kernel');
const base = defaultConfig();
await writeFile(
  configPath,
  JSON.stringify(
    {
      ...base,
      image: { kernel: missingKernel, initrd: missingKernel, cmdline: 'console=ttyS0' },
      restart: {
        ...base.restart,
        initialDelayMs: 300,
        maxDelayMs: 5000,
        multiplier: 2,
        jitter: 0,
        maxAttempts: 4,
      },
    },
    null,
    2,
  ),
);
const daemon = await startTestDaemon({ stateDir });
t.teardown(() => {
  daemon.proc.kill('SIGKILL');
  for (const pid of pidsMatching(`${stateDir}/qmp.sock`)) process.kill(pid, 'SIGKILL');
});
const rec = recordEvents(daemon);
const events = rec.events;
t.teardown(() => rec.close());

t.test(
  'a missing kernel: backoff grows, then failed with the reason, and the daemon stays responsive',
  async (t) => {
    const failed = await daemon.waitFor((s) => s.state === 'failed', 180_000, 'state failed');
    t.match(failed.failedReason ?? '', /no-such-kernel|kernel/i, `reason: ${failed.failedReason}`);
    t.equal(failed.healthy, false);
    t.equal(failed.vm.pid, null);
    const delays = events
      .filter((e) => e.type === 'state' && e.state === 'backoff')
      .map((e) => e as StateEvent & { nextStartAt?: string })
      .map((e) => Date.parse(String(e.nextStartAt ?? '')) - Date.parse(e.at))
      .filter((d) => Number.isFinite(d));
    t.ok(delays.length >= 2, `backoff delays seen: ${delays.join(', ')} ms`);
    for (let i = 1; i < delays.length; i++)
      t.ok(delays[i] > delays[i - 1], `delay ${i} grew: ${delays[i - 1]} → ${delays[i]}`);
    // Responsive and stable while failed: no new start attempts.
    const again = daemon.ctl(['status', '--json']);
    t.equal(again.code, 4, 'status exits 4 for an unhealthy builder');
    const before = events.length;
    await new Promise((r) => setTimeout(r, 2000));
    t.equal(
      events.filter((e, i) => i >= before && e.type === 'state' && e.state === 'starting').length,
      0,
      'no start while failed',
    );
    rec.assertOpen(t, 'no start event');
  },
);

t.test('fixing the config brings the builder up without restarting the daemon', async (t) => {
  const config = JSON.parse(await readFile(configPath, 'utf8'));
  delete config.image;
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const s = await daemon.waitFor(isHealthy, 180_000, 'healthy after the fix');
  t.equal(s.failedReason, null);
  t.ok(s.vm.pid);
});
