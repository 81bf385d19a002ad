// The builder VM dying under a real linuxkitd (tcg): kill -9 five times in a row, then a kernel
// that cannot boot until the config is fixed. One daemon and one state directory throughout;
// the restart policy is short so the whole file takes a few boots' time.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DaemonStatus, StateEvent } from '../../daemon/controller.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { isHealthy, startTestDaemon } from '../helpers/daemon-process.js';
import {
  FAST_TEST_CONFIG,
  QemuWatch,
  assertNoKeyMaterial,
  cpuTimeMs,
  killQemus,
  qemuPidsFor,
  recordEvents,
  waitForEvent,
  writeConfig,
} from './vm-helpers.js';

requireTool('qemu-system-x86_64');

const BOOT_MS = 180_000;
const restart = {
  initialDelayMs: 1000,
  maxDelayMs: 8000,
  multiplier: 2,
  jitter: 0,
  maxAttempts: 4,
  stablePeriodMs: 6000,
};
const baseConfig = { ...FAST_TEST_CONFIG, restart };

const stateDir = await tempDir('crash');
await writeConfig(stateDir, baseConfig);
const daemon = await startTestDaemon({ stateDir });
const watch = new QemuWatch(stateDir);
t.teardown(async () => {
  watch.stop();
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});

const first = await daemon.waitFor(isHealthy, BOOT_MS, 'the first boot');
const rec = recordEvents(daemon);
t.teardown(() => rec.close());

/** "restarting in 1.5 s after 2 failed starts in a row (last: ...)" → { delayMs, failures }. */
function backoffOf(e: StateEvent): { delayMs: number; failures: number } | null {
  const m = /^restarting in (.+?) after (\d+) failed starts? in a row/.exec(e.message);
  if (e.type !== 'state' || e.state !== 'backoff' || !m) return null;
  const d = /^(\d+(?:\.\d+)?) (ms|s)$/.exec(m[1]);
  const delayMs = d ? Number(d[1]) * (d[2] === 's' ? 1000 : 1) : NaN;
  return { delayMs, failures: Number(m[2]) };
}

const daemonLogResets = async () =>
  (await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8'))
    .split('\n')
    .filter((l) => l.includes('the failure count is reset')).length;

/** Resolves with the reset count once the daemon log shows more resets than `than`. */
async function nextReset(than: number, timeoutMs: number, what: string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await daemonLogResets();
    if (n > than) return n;
    if (Date.now() > deadline)
      throw new Error(`no "the failure count is reset" line within ${timeoutMs} ms (${what})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

t.test(
  'kill -9 of the VM five times: healthy again after each, counted, backoff grows and resets after a stable period',
  async (t) => {
    t.ok(first.vm.pid, `first VM pid ${first.vm.pid}`);
    // true: wait for the reset that follows restart.stablePeriodMs healthy before the kill.
    const plan = [false, false, true, false, true];
    let before: DaemonStatus = first;
    const recoveries: number[] = [];
    const seen: Array<{ delayMs: number; failures: number }> = [];
    // The failure count a kill should show follows from the order of kills and resets, not from how
    // fast the machine is: one more than the last kill's, or 1 after a reset in between.
    let resetsAtLastKill = await daemonLogResets();
    let lastFailures = 0;
    for (const [i, waitStable] of plan.entries()) {
      if (waitStable) {
        const waitedFrom = Date.now();
        const resets = await nextReset(
          resetsAtLastKill,
          restart.stablePeriodMs + 120_000,
          `before kill ${i + 1}`,
        );
        t.equal(
          resets,
          resetsAtLastKill + 1,
          `kill ${i + 1}: the failure count was reset once, after the stable period`,
        );
        t.comment(
          `kill ${i + 1}: reset seen ${Date.now() - waitedFrom} ms after healthy was seen (stablePeriodMs ${restart.stablePeriodMs})`,
        );
        before = await daemon.client.status();
        t.ok(isHealthy(before), 'still healthy before the kill');
      }
      const resetsNow = await daemonLogResets();
      const expectedFailures = resetsNow > resetsAtLastKill ? 1 : lastFailures + 1;
      if (!waitStable && resetsNow > resetsAtLastKill)
        t.comment(
          `kill ${i + 1}: a reset came first (the machine was slow to kill), so the count starts again`,
        );
      resetsAtLastKill = resetsNow;
      const mark = rec.events.length;
      const killedAt = Date.now();
      process.kill(before.vm.pid!, 'SIGKILL');
      const after = await daemon.waitFor(
        (s) => isHealthy(s) && s.vm.pid !== before.vm.pid,
        BOOT_MS,
        `recovery from kill ${i + 1}`,
      );
      recoveries.push(Date.now() - killedAt);
      t.equal(after.restarts, i + 1, `kill ${i + 1}: restarts counts it`);
      t.equal(after.lastExit?.signal, 'SIGKILL');
      t.match(after.lastExit?.reason, /SIGKILL/);
      const backoff = rec.events
        .slice(mark)
        .map(backoffOf)
        .find((b) => b !== null);
      t.ok(backoff, `kill ${i + 1}: went through backoff`);
      seen.push(backoff!);
      t.equal(
        backoff!.failures,
        expectedFailures,
        `kill ${i + 1}: ${backoff!.failures} failed start(s) in a row`,
      );
      lastFailures = backoff!.failures;
      const expectedDelay = restart.initialDelayMs * restart.multiplier ** (expectedFailures - 1);
      t.ok(
        backoff!.delayMs <= expectedDelay && backoff!.delayMs > expectedDelay * 0.5,
        `kill ${i + 1}: backoff ${backoff!.delayMs} ms (policy: ${expectedDelay} ms)`,
      );
      before = after;
    }
    t.comment(
      `VM kill -9 survived: ${recoveries.length} of ${plan.length}; kill to healthy: ${recoveries.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s`,
    );
    t.comment(
      `backoff per kill (failures in a row / delay): ${seen.map((b) => `${b.failures}/${b.delayMs} ms`).join(', ')}`,
    );
    t.equal(watch.max, 1, 'never two QEMU processes for the state directory');
  },
);

t.test(
  'a kernel that cannot boot: backoff grows, failed after restart.maxAttempts with the reason, no CPU burned, healthy once fixed',
  async (t) => {
    const notKernel = join(stateDir, 'not-a-kernel');
    await writeFile(notKernel, 'this file is not a Linux kernel\n');
    const before = await daemon.client.status();
    const mark = rec.events.length;
    await writeConfig(stateDir, {
      ...baseConfig,
      image: { kernel: notKernel, initrd: notKernel, cmdline: 'console=ttyS0' },
    });

    // No status polling from here to the end of the wait: only the event stream, so the CPU the
    // daemon uses is its own.
    const firstBackoff = await waitForEvent(
      rec,
      (e) => rec.events.indexOf(e) >= mark && backoffOf(e) !== null,
      180_000,
      'the first backoff',
    );
    const cpu0 = cpuTimeMs(daemon.proc.pid!);
    const wall0 = Date.now();
    await waitForEvent(
      rec,
      (e) => rec.events.indexOf(e) >= mark && e.type === 'state' && e.state === 'failed',
      180_000,
      'failed',
    );
    const cpu1 = cpuTimeMs(daemon.proc.pid!);
    const wall1 = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    const cpu2 = cpuTimeMs(daemon.proc.pid!);
    const wall2 = Date.now();

    const events = rec.events.slice(mark);
    const backoffs = events
      .map(backoffOf)
      .filter((b): b is { delayMs: number; failures: number } => b !== null);
    t.same(
      backoffs.map((b) => b.failures),
      [1, 2, 3],
      'three waits before giving up at the fourth failure',
    );
    for (const [i, b] of backoffs.entries()) {
      const policy = restart.initialDelayMs * restart.multiplier ** i;
      t.ok(
        b.delayMs <= policy && b.delayMs > policy * 0.5,
        `wait ${i + 1}: ${b.delayMs} ms (policy ${policy} ms)`,
      );
    }
    // The VM the config change replaced powered off on request; every other exit is a failed start.
    const failedStart = (e: StateEvent) => e.type === 'exit' && e.requested !== true;
    const attempts = events.filter(failedStart).map((e) => Date.parse(e.at));
    t.equal(attempts.length, 4, 'four failed starts');
    const gaps = attempts.slice(1).map((at, i) => at - attempts[i]);
    for (let i = 1; i < gaps.length; i++)
      t.ok(gaps[i] > gaps[i - 1], `the wait grows: ${gaps[i - 1]} ms then ${gaps[i]} ms`);
    t.ok(firstBackoff);

    const s = await daemon.client.status();
    t.equal(s.state, 'failed');
    t.equal(s.vm.pid, null);
    t.match(
      s.failedReason,
      /^gave up after 4 failed starts in a row \(last: could not start the VM: QEMU exited with code 1 before it was up: .*kernel/,
    );
    t.same(qemuPidsFor(stateDir), [], 'no QEMU left running');
    t.equal(rec.events.slice(mark).filter(failedStart).length, 4, 'no start attempt after failed');
    rec.assertOpen(t, 'no start attempt after failed');
    t.ok(before.vm.pid);

    const backoffCpu = cpu1.self + cpu1.children - cpu0.self - cpu0.children;
    const idleCpu = cpu2.self + cpu2.children - cpu1.self - cpu1.children;
    t.comment(
      `daemon CPU while backing off: ${backoffCpu} ms in ${wall1 - wall0} ms (own ${cpu1.self - cpu0.self} ms, QEMU attempts ${cpu1.children - cpu0.children} ms); ` +
        `in failed: ${idleCpu} ms in ${wall2 - wall1} ms`,
    );
    // The waits themselves cost nothing; what CPU there is goes to the starts (spawning QEMU, its
    // version check). A loop that spun while backing off would use a whole core; this bound tells
    // the two apart on a loaded machine, where the same work takes longer.
    t.ok(
      backoffCpu < 0.25 * (wall1 - wall0),
      `backing off does not spin (${backoffCpu} ms of CPU in ${wall1 - wall0} ms)`,
    );
    t.ok(idleCpu <= 100, `failed costs nothing (${idleCpu} ms in ${wall2 - wall1} ms)`);
    t.comment(
      `failed after ${attempts.length} starts, waits between them ${gaps.join(', ')} ms: ${s.failedReason}`,
    );

    // The fix: back to the built-in image. A config change gives the builder a fresh set of attempts.
    const fixedAt = Date.now();
    await writeConfig(stateDir, baseConfig);
    const healthy = await daemon.waitFor(isHealthy, BOOT_MS, 'healthy after the config was fixed');
    t.equal(healthy.failedReason, null);
    t.equal(healthy.backoff, null);
    t.ok(healthy.vm.pid);
    t.comment(`config fixed to healthy: ${((Date.now() - fixedAt) / 1000).toFixed(1)} s`);
  },
);

t.test(
  'at the end: one QEMU at most all along, SIGTERM powers it off, no key material in any log',
  async (t) => {
    rec.close();
    daemon.proc.kill('SIGTERM');
    const exit = await daemon.exited;
    watch.stop();
    t.equal(exit.code, 0);
    t.same(qemuPidsFor(stateDir), []);
    t.equal(
      watch.max,
      1,
      `never two QEMU processes (${watch.samples} samples, ${watch.seenPids.size} VMs seen)`,
    );
    t.same(watch.overlaps, []);
    await assertNoKeyMaterial(t, stateDir);
  },
);
