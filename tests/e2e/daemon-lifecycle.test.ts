// linuxkitd for real, as launchd or systemd would run it: it boots the builder VM under tcg, keeps it
// healthy without being asked, survives its own death by adopting the VM, and stays on the last good
// config when the file is broken. One daemon, one state directory, in the order a user's day goes.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DaemonStatus } from '../../daemon/controller.js';
import { pidsMatching, requireTool } from '../helpers/env.js';
import { isHealthy, startTestDaemon, type DaemonUnderTest } from '../helpers/daemon-process.js';

requireTool('qemu-system-x86_64');

const BOOT_MS = 180_000;
let daemon: DaemonUnderTest = await startTestDaemon();
const stateDir = daemon.stateDir;
// Sampled all through the file: never two QEMU processes for this state directory.
let maxQemu = 0;
const sampler = setInterval(() => {
  maxQemu = Math.max(maxQemu, pidsMatching(`${stateDir}/qmp.sock`).length);
}, 100);
t.teardown(() => {
  clearInterval(sampler);
  daemon.proc.kill('SIGKILL');
  for (const pid of pidsMatching(`${stateDir}/qmp.sock`)) process.kill(pid, 'SIGKILL');
});

const json = (r: { stdout: string }) => JSON.parse(r.stdout) as DaemonStatus;

t.test('the daemon boots the VM and linuxkitctl status shows it running and healthy', async (t) => {
  await daemon.waitFor(isHealthy, BOOT_MS, 'the first boot to become healthy');
  const r = daemon.ctl(['status', '--json']);
  t.equal(r.code, 0, r.stderr);
  const s = json(r);
  t.equal(s.state, 'running');
  t.equal(s.healthy, true);
  t.equal(s.desired, 'running');
  t.equal(s.backend, 'qemu');
  t.equal(s.accel, 'tcg');
  t.ok(s.vm.pid && s.vm.pid > 0, `VM pid ${s.vm.pid}`);
  t.ok(s.probe.latencyMs! > 0, `probe latency ${s.probe.latencyMs} ms`);
  // The boot's wait is reported as the boot's, never as the probe's latency.
  t.ok(s.vm.readyAt && s.vm.bootToReadyMs! > 0, `ready ${s.vm.bootToReadyMs} ms after the VM started`);
  t.ok(s.probe.latencyMs! < s.vm.bootToReadyMs!, 'the probe latency leaves out the wait for the boot');
  t.match(s.probe.nixVersion, /^2\.\d+\.\d+/);
  t.equal(s.ssh.port, daemon.sshPort);
  t.equal(s.configPath, join(stateDir, 'config.json'));
  const human = daemon.ctl(['status']);
  t.equal(human.code, 0);
  t.match(human.stdout, /builder: running \(healthy\)\s+backend qemu\/tcg/);
  const health = daemon.ctl(['health']);
  t.equal(health.code, 0);
});

t.test('logs show the guest console of this boot and the daemon log', async (t) => {
  const console = daemon.ctl(['logs', '--source', 'console', '--lines', '500']);
  t.equal(console.code, 0);
  t.match(console.stdout, /linuxkit-nix: ssh ready/);
  const own = await daemon.client.logs({ source: 'daemon', lines: 50 });
  t.ok(
    own.lines.some((l) => l.includes('linuxkitd started')),
    'the daemon log has the start line',
  );
});

t.test(
  'an invalid edit of the config file is reported naming the key, and the VM is untouched',
  async (t) => {
    const before = await daemon.client.status();
    const configPath = join(stateDir, 'config.json');
    const good = await readFile(configPath, 'utf8');
    const config = JSON.parse(good);
    await writeFile(configPath, JSON.stringify({ ...config, cpus: 0 }, null, 2));
    const s = await daemon.waitFor(
      (s) => s.errors.some((e) => e.source === 'config'),
      20_000,
      'the config error in status',
    );
    const err = s.errors.find((e) => e.source === 'config')!;
    t.match(err.message, /cpus/);
    t.match(err.message, /between 1 and 64/);
    t.equal(s.vm.pid, before.vm.pid, 'same VM');
    t.equal(s.state, 'running');
    await writeFile(configPath, good);
    const fixed = await daemon.waitFor(
      (s) => !s.errors.some((e) => e.source === 'config'),
      20_000,
      'the error to clear',
    );
    t.equal(fixed.vm.pid, before.vm.pid, 'fixing the file did not restart the VM either');
  },
);

t.test(
  'kill -9 of QEMU: the daemon brings the builder back to healthy unasked and counts the restart',
  async (t) => {
    const before = await daemon.client.status();
    process.kill(before.vm.pid!, 'SIGKILL');
    const after = await daemon.waitFor(
      (s) => isHealthy(s) && s.vm.pid !== before.vm.pid,
      BOOT_MS,
      'recovery after kill -9',
    );
    t.equal(after.restarts, before.restarts + 1);
    t.match(after.lastExit?.reason ?? '', /SIGKILL/);
    t.equal(after.lastExit?.signal, 'SIGKILL');
  },
);

t.test('linuxkitctl restart --wait returns once healthy again, with a new VM pid', async (t) => {
  const before = await daemon.client.status();
  const r = daemon.ctl(['restart', '--wait', '--timeout', '240']);
  t.equal(r.code, 0, r.stderr + r.stdout);
  const after = await daemon.client.status();
  t.ok(isHealthy(after));
  t.not(after.vm.pid, before.vm.pid);
});

t.test('kill -9 of the daemon: a new daemon adopts the same VM, never a second QEMU', async (t) => {
  const before = await daemon.client.status();
  daemon.proc.kill('SIGKILL');
  await daemon.exited;
  t.equal(pidsMatching(`${stateDir}/qmp.sock`).length, 1, 'the VM outlived its daemon');
  daemon = await startTestDaemon({ stateDir, sshPort: daemon.sshPort });
  const s = await daemon.waitFor(isHealthy, 60_000, 'the new daemon to adopt a healthy VM');
  t.equal(s.vm.pid, before.vm.pid, 'same VM pid');
  t.equal(s.vm.adopted, true);
  t.not(s.daemon.pid, before.daemon.pid);
  t.equal(maxQemu, 1, 'never two QEMU processes for this state directory');
});

t.test('SIGTERM stops the guest through ACPI and the daemon exits cleanly', async (t) => {
  const before = await daemon.client.status();
  daemon.proc.kill('SIGTERM');
  const exit = await daemon.exited;
  t.equal(exit.code, 0);
  t.same(pidsMatching(`${stateDir}/qmp.sock`), [], 'no QEMU left');
  const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
  t.match(log, /guest powered off/);
  t.ok(before.vm.pid);
});
