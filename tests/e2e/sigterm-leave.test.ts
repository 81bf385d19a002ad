// `onSigterm: "leave"` under the real linuxkitd (tcg): SIGTERM ends the daemon but not the VM, and
// the next daemon adopts that same VM (same pid) and finds it healthy, without a second QEMU.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
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
const stateDir = await tempDir('leave');
await writeConfig(stateDir, { ...PATIENT_TEST_CONFIG, onSigterm: 'leave' });
let daemon: DaemonUnderTest = await startTestDaemon({ stateDir });
const watch = new QemuWatch(stateDir, 50);
t.teardown(() => {
  watch.stop();
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});

t.test('SIGTERM with onSigterm leave: the daemon exits 0 and the VM keeps running', async (t) => {
  const booted = Date.now();
  const first = await daemon.waitFor(isHealthy, BOOT_MS, 'the first boot');
  t.comment(`daemon start to healthy: ${Date.now() - booted} ms`);
  const signalled = Date.now();
  daemon.proc.kill('SIGTERM');
  const exit = await daemon.exited;
  t.comment(`SIGTERM to daemon exit: ${Date.now() - signalled} ms`);
  t.equal(exit.code, 0, 'a clean exit');
  t.same(qemuPidsFor(stateDir), [first.vm.pid], 'the same QEMU still runs');
  t.ok(existsSync(join(stateDir, 'vm.json')), 'vm.json is left for the next daemon');
  t.equal(daemon.ctl(['status']).code, 3, 'linuxkitctl: the daemon is not reachable');
  const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
  t.match(log, /leaving the VM running for the next daemon to adopt/);
  t.notMatch(log, /guest powered off/, 'the guest was not powered off');

  // The next daemon, as a service manager would start it.
  const restarted = Date.now();
  daemon = await startTestDaemon({ stateDir, sshPort: daemon.sshPort });
  const s = await daemon.waitFor(isHealthy, 120_000, 'the new daemon to adopt a healthy VM');
  t.comment(`new daemon start to healthy (adopted): ${Date.now() - restarted} ms`);
  t.equal(s.vm.pid, first.vm.pid, 'same VM pid');
  t.equal(s.vm.adopted, true);
  t.equal(s.restarts, first.restarts, 'no restart counted');
  t.not(s.daemon.pid, first.daemon.pid, 'another daemon');
  t.same(qemuPidsFor(stateDir), [first.vm.pid]);
  t.equal(watch.max, 1, `never two QEMU processes (${watch.samples} samples)`);
  t.same([...watch.seenPids], [first.vm.pid], 'only ever the one VM');
});

t.test('the adopted VM is still a working builder: restart --wait replaces it', async (t) => {
  const before = await daemon.client.status();
  const r = daemon.ctl(['restart', '--wait', '--timeout', '240']);
  t.equal(r.code, 0, r.stderr + r.stdout);
  const after = await daemon.client.status();
  t.ok(isHealthy(after));
  t.not(after.vm.pid, before.vm.pid, 'a new VM');
  t.same(qemuPidsFor(stateDir), [after.vm.pid], 'the adopted one is gone');
});
