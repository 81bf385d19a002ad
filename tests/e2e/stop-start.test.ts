// `linuxkitctl stop` and `start` against the real linuxkitd and VM (tcg), as a user runs them:
// stop powers the VM off and the daemon keeps answering; a stopped builder stays stopped when the
// daemon is restarted (desired.json outlives it); start --wait brings it back to healthy.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DaemonStatus } from '../../daemon/controller.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { isHealthy, startTestDaemon, type DaemonUnderTest } from '../helpers/daemon-process.js';
import {
  PATIENT_BOOT_MS,
  PATIENT_FILE_TIMEOUT_MS,
  PATIENT_TEST_CONFIG,
  QemuWatch,
  killQemus,
  qemuPidsFor,
  writeConfig,
} from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');

const BOOT_MS = PATIENT_BOOT_MS;
// Several tcg boots on a loaded machine: more than tap's default of 600 s per file.
t.setTimeout(PATIENT_FILE_TIMEOUT_MS);
const stateDir = await tempDir('stop');
await writeConfig(stateDir, PATIENT_TEST_CONFIG);
let daemon: DaemonUnderTest = await startTestDaemon({ stateDir });
const watch = new QemuWatch(stateDir, 100);
t.teardown(() => {
  watch.stop();
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});

const json = (r: { stdout: string }) => JSON.parse(r.stdout) as DaemonStatus;
const desiredOnDisk = async () =>
  (JSON.parse(await readFile(join(stateDir, 'desired.json'), 'utf8')) as { desired: string }).desired;

t.test('linuxkitctl stop powers the VM off; the daemon stays and reports stopped', async (t) => {
  const booted = Date.now();
  const first = await daemon.waitFor(isHealthy, BOOT_MS, 'the first boot');
  t.comment(`daemon start to healthy: ${Date.now() - booted} ms`);
  t.equal(qemuPidsFor(stateDir).length, 1, 'one VM runs');

  const asked = Date.now();
  const r = daemon.ctl(['stop', '--json']);
  t.equal(r.code, 0, r.stderr);
  const stopped = await daemon.waitFor((s) => s.state === 'stopped', 120_000, 'the builder to be stopped');
  t.comment(`linuxkitctl stop to state stopped: ${Date.now() - asked} ms`);
  t.equal(stopped.desired, 'stopped');
  t.equal(stopped.healthy, false);
  t.equal(stopped.vm.pid, null);
  t.same(qemuPidsFor(stateDir), [], 'no QEMU left for this state directory');
  t.equal(stopped.restarts, first.restarts, 'a requested stop is not a crash');
  t.equal(await desiredOnDisk(), 'stopped', 'desired.json says stopped');

  const status = daemon.ctl(['status']);
  t.equal(status.code, 4, 'status exits 4: not healthy');
  t.match(status.stdout, /builder: stopped/);
  t.match(status.stdout, /desired: stopped/);
  const health = daemon.ctl(['health']);
  t.equal(health.code, 4);
});

t.test('a stopped builder stays stopped across a daemon restart', async (t) => {
  const before = await daemon.client.status();
  daemon.proc.kill('SIGTERM');
  const exit = await daemon.exited;
  t.equal(exit.code, 0, 'the daemon exited cleanly');
  daemon = await startTestDaemon({ stateDir, sshPort: daemon.sshPort });
  const s = await daemon.waitFor((s) => s.daemon.pid !== before.daemon.pid, 30_000, 'the new daemon');
  t.equal(s.desired, 'stopped', 'the new daemon read desired.json');
  // Long enough for a start to have shown up: a start spawns QEMU within a second or two.
  const watchedFrom = watch.samples;
  await new Promise((r) => setTimeout(r, 8000));
  const after = await daemon.client.status();
  t.equal(after.state, 'stopped');
  t.equal(after.vm.pid, null);
  t.same(qemuPidsFor(stateDir), [], 'no QEMU started');
  t.ok(watch.samples > watchedFrom, `QEMU watched ${watch.samples - watchedFrom} times meanwhile`);
  const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
  const sinceRestart = log.slice(log.lastIndexOf('linuxkitd started'));
  t.notMatch(sinceRestart, /VM process started/, 'the new daemon never started a VM');
});

t.test('linuxkitctl start --wait brings the builder back to healthy and desired running', async (t) => {
  const asked = Date.now();
  const r = daemon.ctl(['start', '--wait', '--timeout', '240', '--json']);
  t.equal(r.code, 0, r.stderr + r.stdout);
  t.comment(`linuxkitctl start --wait: ${Date.now() - asked} ms`);
  const s = json(r);
  t.ok(isHealthy(s), 'the printed status is healthy');
  t.equal(s.desired, 'running');
  t.equal(qemuPidsFor(stateDir).length, 1);
  t.equal(s.vm.pid, qemuPidsFor(stateDir)[0], 'status names the VM that runs');
  t.equal(await desiredOnDisk(), 'running');
  t.equal(watch.max, 1, 'never two QEMU processes for this state directory');
});

t.test('SIGTERM of the daemon (onSigterm stop) powers the VM off', async (t) => {
  daemon.proc.kill('SIGTERM');
  const exit = await daemon.exited;
  t.equal(exit.code, 0);
  t.same(qemuPidsFor(stateDir), []);
});
