// A hung guest under the real linuxkitd (tcg): QEMU is alive but frozen (SIGSTOP), so the SSH probe
// times out while the process exits never. The daemon must call it degraded, and once it has been
// degraded for `probe.degradedRestartMs` replace it with a new VM that becomes healthy.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { StateEvent } from '../../daemon/controller.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { isHealthy, startTestDaemon } from '../helpers/daemon-process.js';
import {
  PATIENT_BOOT_MS,
  PATIENT_FILE_TIMEOUT_MS,
  PATIENT_TEST_CONFIG,
  killQemus,
  qemuPidsFor,
  recordEvents,
  waitForEvent,
  writeConfig,
} from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');

const BOOT_MS = PATIENT_BOOT_MS;
// Several tcg boots on a loaded machine: more than tap's default of 600 s per file.
t.setTimeout(PATIENT_FILE_TIMEOUT_MS);
const DEGRADED_RESTART_MS = 30_000;
const stateDir = await tempDir('hung');
await writeConfig(stateDir, {
  ...PATIENT_TEST_CONFIG,
  probe: { ...PATIENT_TEST_CONFIG.probe, degradedRestartMs: DEGRADED_RESTART_MS },
  stopGraceMs: 5000,
  restart: { initialDelayMs: 1000, jitter: 0 },
});
const daemon = await startTestDaemon({ stateDir });
t.teardown(() => {
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});

/** The state letter of `pid` in /proc (T: stopped by a signal), or null when it is gone. */
function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

t.test(
  'SIGSTOP of QEMU: degraded, then restarted after degradedRestartMs, healthy on a new VM',
  async (t) => {
    const booted = Date.now();
    const first = await daemon.waitFor(isHealthy, BOOT_MS, 'the first boot');
    t.comment(`daemon start to healthy: ${Date.now() - booted} ms`);
    const rec = recordEvents(daemon);
    t.teardown(() => rec.close());
    await waitForEvent(rec, (e) => e.initial === true, 10_000, 'the initial snapshot');
    const hungPid = first.vm.pid!;

    const stoppedAt = Date.now();
    process.kill(hungPid, 'SIGSTOP');
    // The stop is delivered asynchronously: /proc shows T once every thread has stopped.
    for (let i = 0; i < 100 && processState(hungPid) !== 'T'; i++)
      await new Promise((r) => setTimeout(r, 100));
    t.equal(processState(hungPid), 'T', 'QEMU is frozen, not gone');
    const isState = (state: string) => (e: StateEvent) =>
      e.type === 'state' && e.state === state && e.initial !== true;

    const degraded = await waitForEvent(rec, isState('degraded'), 60_000, 'degraded');
    const degradedAt = Date.now();
    t.comment(`SIGSTOP to degraded: ${degradedAt - stoppedAt} ms (probe every 15 s, timeout 15 s)`);
    t.match(degraded.message, /SSH probe is failing/);
    const mid = await daemon.client.status();
    t.equal(mid.state, 'degraded');
    t.equal(mid.healthy, false);
    t.equal(mid.vm.pid, hungPid, 'still the frozen VM while degraded');

    const stopping = await waitForEvent(
      rec,
      isState('stopping'),
      DEGRADED_RESTART_MS + 90_000,
      'the restart',
    );
    const restartAt = Date.now();
    t.comment(`degraded to restart: ${restartAt - degradedAt} ms (degradedRestartMs ${DEGRADED_RESTART_MS})`);
    t.match(stopping.message, /unhealthy for/);
    t.ok(
      restartAt - degradedAt >= DEGRADED_RESTART_MS - 1000,
      "not restarted before degradedRestartMs (less the test's polling)",
    );

    const after = await daemon.waitFor(
      (s) => isHealthy(s) && s.vm.pid !== hungPid,
      BOOT_MS,
      'a new healthy VM',
    );
    t.comment(`SIGSTOP to healthy on a new VM: ${Date.now() - stoppedAt} ms`);
    t.equal(processState(hungPid), null, 'the frozen QEMU is gone (killed, reaped)');
    t.same(qemuPidsFor(stateDir), [after.vm.pid], 'exactly one QEMU: the new one');
    t.equal(after.desired, 'running');

    // The order the events came in: degraded, stopping, starting, running.
    const order = rec.events
      .filter((e) => e.type === 'state' && e.initial !== true)
      .map((e) => e.state)
      .filter((s, i, all) => s !== all[i - 1]);
    t.comment(`state events: ${order.join(' → ')}`);
    const at = (s: string) => order.indexOf(s as never);
    t.ok(at('degraded') >= 0 && at('degraded') < at('stopping'), 'degraded before stopping');
    t.ok(at('stopping') < order.lastIndexOf('starting' as never), 'stopping before the new start');
    t.equal(order[order.length - 1], 'running', 'ends running');
  },
);
