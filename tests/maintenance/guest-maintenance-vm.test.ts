// Guest maintenance against a real linuxkitd and VM (tcg): the guest clock set an hour back over
// SSH is noticed and set right; garbage added to the guest store below gc.minFreeMiB is
// collected. Both show up as `repair` events on /v1/events and in the daemon log.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decideClockCorrection, measureSkew, parseGuestEpoch } from '../../daemon/maintenance/clock-skew.js';
import {
  FIRST_PASS_DELAY_MS,
  MAX_CLOCK_SKEW_MS,
  maintenanceIntervalMs,
} from '../../daemon/maintenance/guest-maintenance.js';
import { parseDfOutput } from '../../daemon/maintenance/store-space.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { isHealthy, startTestDaemon } from '../helpers/daemon-process.js';
import {
  FAST_TEST_CONFIG,
  assertNoKeyMaterial,
  guestRun,
  killQemus,
  qemuPidsFor,
  recordEvents,
  waitForEvent,
  writeConfig,
} from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');

// A Nix probe (and so a maintenance pass) every 20 s rather than every 5 min, to see passes soon.
const config = { ...FAST_TEST_CONFIG, probe: { ...FAST_TEST_CONFIG.probe, nixIntervalMs: 20_000 } };
const intervalMs = maintenanceIntervalMs(config.probe);
const stateDir = await tempDir('maint');
await writeConfig(stateDir, config);
const daemon = await startTestDaemon({ stateDir });
t.teardown(() => {
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});
const booted = await daemon.waitFor(isHealthy, 180_000, 'the first boot');
const rec = recordEvents(daemon);
t.teardown(() => rec.close());
const guest = (command: string) => guestRun(stateDir, daemon.sshPort, command);

async function guestSkew(): Promise<ReturnType<typeof measureSkew>> {
  const before = Date.now();
  const res = await guest('date +%s');
  return measureSkew({
    guestEpochS: parseGuestEpoch(res.stdout),
    hostBeforeMs: before,
    hostAfterMs: Date.now(),
  });
}

async function freeKiB(): Promise<number> {
  return parseDfOutput((await guest('df -Pk /nix/store')).stdout).availableKiB;
}

t.test('a guest clock set an hour behind is noticed and set to the host time', async (t) => {
  // Past the pass that follows the builder becoming healthy: the next one is a scheduled one.
  await new Promise((r) => setTimeout(r, FIRST_PASS_DELAY_MS + 3000));
  const mark = rec.events.length;
  await guest(`date -u -s @${Math.floor(Date.now() / 1000) - 3600} >/dev/null`);
  const setBack = Date.now();
  const behind = await guestSkew();
  t.ok(behind.maxMs < -3_590_000, `the guest is an hour behind (${Math.round(behind.skewMs / 1000)} s)`);
  const e = await waitForEvent(
    rec,
    (e) => rec.events.indexOf(e) >= mark && e.type === 'repair' && e.action === 'clock',
    intervalMs + 30_000,
    'the clock repair event',
  );
  const noticedMs = Date.now() - setBack;
  t.match(
    e.message,
    /^set the guest clock to the host's: the guest clock is 36\d\d s behind the host; now within/,
  );
  t.ok((e.skewBeforeMs as number) < -3_590_000, `skew before: ${e.skewBeforeMs} ms`);
  const after = await guestSkew();
  // In sync by the daemon's own rule (what its next pass decides), not by a fixed bound: a slow
  // SSH round trip on a loaded machine widens the measured interval without the clock being off.
  const again = decideClockCorrection(after, MAX_CLOCK_SKEW_MS);
  t.equal(
    again.correct,
    false,
    `the next pass would leave it alone: ${again.reason} (bounds ${after.minMs}..${after.maxMs} ms)`,
  );
  const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
  t.match(log, /"type":"repair".*set the guest clock to the host's/, 'in the daemon log too');
  t.comment(
    `clock: set ${Math.round(-behind.skewMs / 1000)} s behind, corrected ${(noticedMs / 1000).toFixed(1)} s later (a pass every ${intervalMs / 1000} s); ` +
      `skew after: ${after.skewMs} ms (bounds ${after.minMs}..${after.maxMs} ms)`,
  );
});

t.test('garbage that takes the store below gc.minFreeMiB is collected in the guest', async (t) => {
  const mark = rec.events.length;
  const free0 = await freeKiB();
  // Two 16 MiB paths no root refers to; the nonce makes them new paths on every run.
  const nonce = `${process.pid}-${Date.now()}`;
  const added = await guest(
    `for i in 1 2; do head -c 16777216 /dev/zero > /tmp/garbage-$i && echo ${nonce}-$i >> /tmp/garbage-$i && ` +
      `nix-store --add /tmp/garbage-$i && rm /tmp/garbage-$i || exit 1; done`,
  );
  const paths = added.stdout.trim().split('\n');
  t.equal(paths.length, 2, `added ${paths.join(' ')}`);
  const free1 = await freeKiB();
  t.ok(free0 - free1 >= 30 * 1024, `the store lost ${Math.round((free0 - free1) / 1024)} MiB`);
  t.same(
    rec.events.slice(mark).filter((e) => e.type === 'repair' && e.action === 'gc'),
    [],
    'no collection while above the threshold',
  );
  rec.assertOpen(t, 'no collection event');

  // A threshold between the free space before and after: the store is now "full".
  const minFreeMiB = Math.floor(free1 / 1024) + 12;
  const maxFreeMiB = Math.floor(free0 / 1024) - 2;
  await writeConfig(stateDir, { ...config, gc: { minFreeMiB, maxFreeMiB } });
  const editedAt = Date.now();
  const e = await waitForEvent(
    rec,
    (e) => rec.events.indexOf(e) >= mark && e.type === 'repair' && e.action === 'gc',
    intervalMs + 60_000,
    'the garbage collection repair event',
  );
  const tookMs = Date.now() - editedAt;
  t.match(
    e.message,
    new RegExp(
      `^collected garbage in the guest store: only \\d+ MiB free in the guest store, below gc\\.minFreeMiB ${minFreeMiB} MiB; [12] store paths deleted`,
    ),
  );
  t.ok((e.freeBeforeMiB as number) < minFreeMiB, `free before: ${Math.round(e.freeBeforeMiB as number)} MiB`);
  t.ok((e.freeAfterMiB as number) >= minFreeMiB, `free after: ${Math.round(e.freeAfterMiB as number)} MiB`);
  const free2 = await freeKiB();
  t.ok(free2 - free1 >= 15 * 1024, `the store regained ${Math.round((free2 - free1) / 1024)} MiB`);
  const gone = await guest(`for p in ${paths.join(' ')}; do test -e $p && echo "$p still there"; done; true`);
  t.ok(
    gone.stdout.trim().split('\n').filter(Boolean).length < paths.length,
    `collected: ${gone.stdout.trim() || 'all of them'}`,
  );
  const s = await daemon.client.status();
  t.same(s.errors, [], 'no maintenance error: the store has room again');
  t.equal(s.vm.pid, booted.vm.pid, 'the same VM throughout');
  t.ok(isHealthy(s));
  const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
  t.match(log, /collecting garbage in the guest: only \d+ MiB free/, 'the decision is in the daemon log');
  t.comment(
    `gc: free ${Math.round(free0 / 1024)} → ${Math.round(free1 / 1024)} MiB after adding garbage; gc.minFreeMiB ${minFreeMiB}; ` +
      `collected ${(tookMs / 1000).toFixed(1)} s after the edit (${e.summary}); free now ${Math.round(free2 / 1024)} MiB`,
  );
});

t.test('at the end: SIGTERM stops the VM; no key material in any log', async (t) => {
  rec.close();
  daemon.proc.kill('SIGTERM');
  t.equal((await daemon.exited).code, 0);
  t.same(qemuPidsFor(stateDir), []);
  await assertNoKeyMaterial(t, stateDir);
});
