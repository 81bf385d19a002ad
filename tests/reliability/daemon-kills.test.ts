// linuxkitd itself dying while the VM runs (tcg): kill -9 three times, each new daemon adopting the
// same VM (one of them pinned to the wrong host key, which it must refuse), then a power cut
// that kills daemon and QEMU together, then SIGTERM powering the guest off through ACPI. The
// QEMU processes of the state directory are sampled every 20 ms through the whole file.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool, tempDir } from '../helpers/env.js';
import { isHealthy, startTestDaemon, type DaemonUnderTest } from '../helpers/daemon-process.js';
import {
  FAST_TEST_CONFIG,
  QemuWatch,
  assertNoKeyMaterial,
  killQemus,
  qemuPidsFor,
  writeConfig,
} from './vm-helpers.js';

requireTool('qemu-system-x86_64');
requireTool('ssh-keygen');

const BOOT_MS = 180_000;
// Deadlines, not speed checks (a new daemon alone may take most of a minute to start when loaded).
const ADOPT_MS = 180_000;
const stopGraceMs = 20_000;
const stateDir = await tempDir('dkill');
await writeConfig(stateDir, {
  ...FAST_TEST_CONFIG,
  stopGraceMs,
  onSigterm: 'stop',
  restart: { initialDelayMs: 500, maxDelayMs: 4000, jitter: 0, stablePeriodMs: 5000 },
});
const watch = new QemuWatch(stateDir);
let daemon: DaemonUnderTest = await startTestDaemon({ stateDir });
const sshPort = daemon.sshPort;
t.teardown(() => {
  watch.stop();
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});

const booted = await daemon.waitFor(isHealthy, BOOT_MS, 'the first boot');
const vmPid = booted.vm.pid!;
const hostPub = join(stateDir, 'keys', 'ssh_host_ed25519_key.pub');
const realHostPub = await readFile(hostPub, 'utf8');
const adoptTimes: number[] = [];
/** One entry per daemon kill -9: whether the next daemon took over the same VM (what "survived" counts). */
const kills: Array<{ adopted: boolean; outcome: string }> = [];

/** kill -9 of the daemon; `meanwhile` runs while no daemon runs; then a new daemon starts. */
async function killDaemonAndRestart(meanwhile?: () => Promise<void>): Promise<number> {
  const old = daemon;
  old.proc.kill('SIGKILL');
  await old.exited;
  if (JSON.stringify(qemuPidsFor(stateDir)) !== JSON.stringify([vmPid])) {
    throw new Error(
      `the VM did not outlive its daemon: QEMU pids ${JSON.stringify(qemuPidsFor(stateDir))}, expected [${vmPid}]`,
    );
  }
  await meanwhile?.();
  const startedAt = Date.now();
  daemon = await startTestDaemon({ stateDir, sshPort });
  return startedAt;
}

t.test('kill -9 of the daemon (1 of 3): the new daemon adopts the running VM', async (t) => {
  const startedAt = await killDaemonAndRestart();
  const s = await daemon.waitFor((s) => isHealthy(s) && s.vm.pid === vmPid, ADOPT_MS, 'adoption');
  adoptTimes.push(Date.now() - startedAt);
  kills.push({ adopted: s.vm.adopted === true && s.vm.pid === vmPid, outcome: 'adopted, healthy' });
  t.equal(s.vm.adopted, true);
  t.equal(s.vm.pid, vmPid, 'same VM');
  t.equal(s.restarts, 0);
});

t.test(
  'kill -9 (2 of 3) with another host key pinned: the VM is adopted but refused with "host key mismatch"',
  async (t) => {
    const other = await tempDir('otherkey');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'impostor', '-f', join(other, 'k')]);
    // The guest keeps the host key it booted with; the new daemon pins another one.
    await killDaemonAndRestart(async () => writeFile(hostPub, await readFile(join(other, 'k.pub'), 'utf8')));
    const s = await daemon.waitFor(
      (s) => s.vm.pid === vmPid && /host key mismatch/.test(s.probe.error ?? ''),
      ADOPT_MS,
      'the probe to report the host key mismatch',
    );
    kills.push({
      adopted: s.vm.adopted === true && s.vm.pid === vmPid,
      outcome: 'adopted, refused for its host key',
    });
    t.equal(s.vm.adopted, true, 'the VM is adopted');
    t.equal(s.healthy, false, 'but not healthy: no build goes to a host that is not the pinned one');
    t.match(
      s.probe.error,
      /^host key mismatch for root@127\.0\.0\.1:\d+: the guest presented SHA256:\S+ but SHA256:\S+ is pinned; refusing to connect/,
    );
    const cli = daemon.ctl(['status']);
    t.equal(cli.code, 4, 'linuxkitctl status exits 4 (not healthy)');
    t.match(cli.stdout, /host key mismatch/, 'and shows the mismatch');
    // The refusal is stable: probes keep failing the same way and the VM is left as it is.
    await new Promise((r) => setTimeout(r, 6000));
    const later = await daemon.client.status();
    t.equal(later.vm.pid, vmPid);
    t.equal(later.healthy, false);
    t.match(later.probe.error, /host key mismatch/);
    t.comment(`pinned-key refusal: ${later.probe.error}`);
    await writeFile(hostPub, realHostPub);
  },
);

t.test('kill -9 of the daemon (3 of 3) with the right key again: adopted and healthy', async (t) => {
  const startedAt = await killDaemonAndRestart();
  const s = await daemon.waitFor((s) => isHealthy(s) && s.vm.pid === vmPid, ADOPT_MS, 'adoption');
  adoptTimes.push(Date.now() - startedAt);
  kills.push({ adopted: s.vm.adopted === true && s.vm.pid === vmPid, outcome: 'adopted, healthy' });
  t.equal(s.vm.adopted, true);
  t.equal(s.vm.pid, vmPid);
  t.equal(watch.max, 1, `never two QEMU processes so far (${watch.samples} samples)`);
  // Counted from the outcomes recorded above: a kill whose test failed before recording is missing.
  const survived = kills.filter((k) => k.adopted).length;
  t.equal(survived, 3, 'each of the three kills was survived by adoption');
  t.comment(
    `daemon kill -9 survived: ${survived} of 3 (${kills.map((k) => k.outcome).join('; ')}), VM pid ${vmPid}; ` +
      `adoption to healthy: ${adoptTimes.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s`,
  );
});

t.test(
  'a power cut (daemon and QEMU killed together): the next start cleans the stale files and boots',
  async (t) => {
    const before = await daemon.client.status();
    daemon.proc.kill('SIGKILL');
    process.kill(vmPid, 'SIGKILL');
    await daemon.exited;
    for (let i = 0; i < 100 && qemuPidsFor(stateDir).length > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    t.same(qemuPidsFor(stateDir), [], 'nothing runs');
    const stale = ['qemu.pid', 'qmp.sock', 'daemon.sock', 'vm.json', 'daemon.lock'].filter((f) =>
      existsSync(join(stateDir, f)),
    );
    t.same(
      stale.sort(),
      ['daemon.lock', 'daemon.sock', 'qemu.pid', 'qmp.sock', 'vm.json'],
      'a power cut leaves every runtime file behind',
    );
    t.equal((await readFile(join(stateDir, 'qemu.pid'), 'utf8')).trim(), String(vmPid));

    const startedAt = Date.now();
    daemon = await startTestDaemon({ stateDir, sshPort });
    const s = await daemon.waitFor((s) => isHealthy(s) && s.vm.pid !== vmPid, BOOT_MS, 'a fresh boot');
    t.comment(`power cut to healthy: ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    t.not(s.vm.pid, before.vm.pid);
    t.equal(s.vm.adopted, false, 'a new VM, not the dead one');
    t.equal(
      (await readFile(join(stateDir, 'qemu.pid'), 'utf8')).trim(),
      String(s.vm.pid),
      'the pid file is the new VM’s',
    );
    t.equal(
      JSON.parse(await readFile(join(stateDir, 'vm.json'), 'utf8')).pid,
      s.vm.pid,
      'so is the VM record',
    );
    t.equal(
      (await readFile(join(stateDir, 'daemon.lock'), 'utf8')).trim(),
      String(daemon.proc.pid),
      'the lock is the new daemon’s',
    );
    t.ok(lstatSync(join(stateDir, 'qmp.sock')).isSocket());
    const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
    t.match(log, /the recorded VM is gone; cleaning up after it/);
    t.match(log, /removed stale QEMU files/);
    t.equal(watch.max, 1);
  },
);

// The grace is proven by the outcome (a requested power-off, not a quit or a kill after it ran out);
// the time it took is reported, not asserted: a loaded machine under tcg may take longer.
t.test('SIGTERM: the guest powers off through ACPI and the daemon exits 0', async (t) => {
  const before = await daemon.client.status();
  const sentAt = Date.now();
  daemon.proc.kill('SIGTERM');
  const exit = await daemon.exited;
  const tookMs = Date.now() - sentAt;
  t.equal(exit.code, 0);
  t.same(qemuPidsFor(stateDir), [], 'QEMU is gone');
  t.notOk(existsSync(join(stateDir, 'vm.json')), 'no VM record left to adopt');
  const log = (await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const exitEvent = log
    .map((l) => l.event as Record<string, unknown> | undefined)
    .filter((e) => e?.type === 'exit')
    .pop();
  t.match(
    exitEvent,
    { type: 'exit', message: 'guest powered off', code: 0, requested: true },
    'lastExit: the guest powered off',
  );
  const consoleDir = join(stateDir, 'console');
  const latest = (await readdir(consoleDir))
    .filter((n) => n.endsWith('.log'))
    .sort()
    .pop()!;
  const console = await readFile(join(consoleDir, latest), 'utf8');
  t.match(console, /linuxkit-nix: shutting down/, 'the guest ran its ACPI power-button handler');
  t.match(console, /reboot: Power down/, 'and the kernel powered off');
  t.comment(
    `SIGTERM to daemon exit with the guest powered off through ACPI: ${tookMs} ms of stopGraceMs ${stopGraceMs} (VM pid ${before.vm.pid})`,
  );
});

t.test(
  'through the whole file: never two QEMU processes for the state directory; no key material in the logs',
  async (t) => {
    watch.stop();
    t.equal(watch.max, 1, `${watch.samples} samples every 20 ms, ${watch.seenPids.size} VMs seen`);
    t.same(watch.overlaps, []);
    t.equal(watch.seenPids.size, 2, 'two VMs in all: the first, and the one booted after the power cut');
    t.comment(`QEMU processes per state directory: at most ${watch.max} in ${watch.samples} samples`);
    await assertNoKeyMaterial(t, stateDir);
  },
);
