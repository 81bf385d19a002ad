// The QEMU backend against a real QEMU (tcg) booting the host's Debian kernel with no initrd:
// no guest image needed. Without a root filesystem the kernel panics, which is what we want:
// `panic=-1` reboots at once (QEMU exits under -no-reboot), `panic=0` hangs there forever.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmExit, VmSpec } from '../../../daemon/backend.js';
import { buildQemuArgs, qemuPaths } from '../../../daemon/backends/qemu/args.js';
import { firmwareFor } from '../../../daemon/backends/qemu/firmware.js';
import { QemuBackend } from '../../../daemon/backends/qemu/qemu-backend.js';
import { readProcessIdentity } from '../../../daemon/process/identity.js';
import { freePort, requireTool, tempDir } from '../../helpers/env.js';

requireTool('qemu-system-x86_64');
const kernelName = (await readdir('/boot'))
  .filter((f) => f.startsWith('vmlinuz-'))
  .sort()
  .pop();
if (!kernelName) throw new Error('no /boot/vmlinuz-* kernel: these tests boot the host kernel under QEMU');
const kernel = join('/boot', kernelName);

type Teardown = { teardown(fn: () => unknown): void };
const startedPids = new Set<number>();
t.teardown(() => {
  // Whatever failed above, leave no QEMU running.
  for (const pid of startedPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

async function specFor(t: Teardown, cmdline: string, sub = 'state'): Promise<VmSpec> {
  const root = await tempDir('qemu');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const stateDir = join(root, sub);
  return {
    arch: 'x86_64',
    accel: 'tcg',
    cpus: 1,
    memoryMiB: 256,
    kernel,
    initrd: '',
    cmdline,
    sshPort: await freePort(),
    stateDir,
    consoleLog: join(stateDir, 'console.log'),
    guestFiles: {},
  };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const isAlive = async (pid: number) => (await readProcessIdentity(pid)) !== null;
const filesLeft = (spec: VmSpec) =>
  [qemuPaths(spec.stateDir).qmpSocket, qemuPaths(spec.stateDir).pidFile].filter((f) => existsSync(f));

t.test(
  'a guest kernel panic without a pvpanic driver reboots: QEMU exits and reports a guest reboot',
  async (t) => {
    // A state directory with a space and a comma: QEMU must get every path right.
    const spec = await specFor(t, 'console=ttyS0 panic=-1', 'st a,te');
    const backend = new QemuBackend();
    const handle = await backend.start(spec);
    startedPids.add(handle.pid);

    t.equal(handle.record.backend, 'qemu');
    t.equal(handle.record.pid, handle.pid);
    t.equal(handle.record.executable, '/usr/bin/qemu-system-x86_64', 'the real path of the running binary');
    const firmware = await firmwareFor(spec, 'qemu-system-x86_64');
    t.equal(firmware, '/usr/share/qemu/qboot.rom', "tcg boots through the Debian QEMU's qboot");
    t.same(handle.record.argv, ['qemu-system-x86_64', ...buildQemuArgs(spec, { firmware }).argv]);
    t.match(handle.record.processStartTime, /^\d+$/);
    t.equal(handle.record.sshPort, spec.sshPort);
    const { qmpSocket, pidFile } = qemuPaths(spec.stateDir);
    t.same(handle.record.extra, { qmpSocket, pidFile });
    t.equal((await readFile(qemuPaths(spec.stateDir).pidFile, 'utf8')).trim(), String(handle.pid));

    const exit = await within(handle.exited, 120_000, 'the guest panic');
    // Debian's pvpanic driver is a module, so a kernel without an initrd cannot report the panic
    // itself: panic=-1 reboots, and QEMU (-no-reboot) reports SHUTDOWN reason "guest-reset".
    t.match(exit, { code: 0, signal: null, reason: 'guest rebooted', reboot: true });
    t.match(await readFile(spec.consoleLog, 'utf8'), /Kernel panic - not syncing/);
    t.notOk(await isAlive(handle.pid), 'no QEMU process left');
    t.same(filesLeft(spec), [], 'no pid file or QMP socket left');
  },
);

/**
 * A tiny initrd (busybox + the host kernel's pvpanic modules) whose /init loads the pvpanic
 * driver and crashes the kernel on purpose, so the panic reaches QEMU as GUEST_PANICKED.
 */
async function panickingInitrd(dir: string): Promise<string> {
  requireTool('cpio');
  requireTool('gzip');
  const kver = kernelName!.slice('vmlinuz-'.length);
  const modules = `/lib/modules/${kver}/kernel/drivers/misc/pvpanic`;
  const root = join(dir, 'root');
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'proc'));
  await copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
  for (const m of ['pvpanic.ko', 'pvpanic-mmio.ko']) await copyFile(join(modules, m), join(root, m));
  await writeFile(
    join(root, 'init'),
    [
      '#!/bin/busybox sh',
      '/bin/busybox mount -t proc proc /proc',
      '/bin/busybox insmod /pvpanic.ko',
      '/bin/busybox insmod /pvpanic-mmio.ko',
      'echo c > /proc/sysrq-trigger',
      '',
    ].join('\n'),
  );
  await chmod(join(root, 'init'), 0o755);
  const initrd = join(dir, 'initrd.gz');
  execFileSync('sh', ['-c', `cd "$1" && find . | cpio -o -H newc --quiet | gzip > "$2"`, 'sh', root, initrd]);
  return initrd;
}

t.test('a guest with the pvpanic driver reports its panic as such, not as a reboot', async (t) => {
  const spec = await specFor(t, 'console=ttyS0 panic=-1');
  spec.initrd = await panickingInitrd(join(spec.stateDir, '..'));
  const backend = new QemuBackend();
  const handle = await backend.start(spec);
  startedPids.add(handle.pid);
  const exit = await within(handle.exited, 120_000, 'the guest panic');
  t.same(
    { ...exit, at: undefined },
    { code: 0, signal: null, reason: 'guest kernel panicked', at: undefined },
  );
  t.notOk('reboot' in exit, 'a panic is a crash, not a reboot to perform at once');
  t.match(await readFile(spec.consoleLog, 'utf8'), /Kernel panic - not syncing: sysrq triggered crash/);
  t.notOk(await isAlive(handle.pid), 'no QEMU process left');
  t.same(filesLeft(spec), []);
});

t.test('stop with a short grace: ACPI goes unanswered, QMP quit ends QEMU, stop is idempotent', async (t) => {
  const spec = await specFor(t, 'console=ttyS0 panic=0');
  const lines: Array<{ msg: string; pid?: number }> = [];
  const sink = new Writable({
    write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()),
  });
  const backend = new QemuBackend({ log: pino(sink) });
  const handle = await backend.start(spec);
  startedPids.add(handle.pid);
  t.ok(await isAlive(handle.pid), 'QEMU runs');
  t.match(lines, [{ msg: 'QEMU started', pid: handle.pid }], 'a pino logger is accepted');

  const began = Date.now();
  const [exit, again] = await Promise.all([
    backend.stop(handle, { graceMs: 500 }),
    backend.stop(handle, { graceMs: 500 }),
  ]);
  const took = Date.now() - began;
  t.equal(exit, again, 'concurrent stops share one outcome');
  t.match(exit, { code: 0, signal: null, reason: 'stopped by the host' });
  t.notOk('reboot' in exit);
  // Order, not speed: the grace ran out before quit (a lower bound load cannot break), and quit
  // was enough (no kill). How long the whole stop took is a figure: tcg on a busy host varies.
  t.ok(took >= 500 - 5, `the 500 ms grace ran before quit (took ${took} ms)`);
  t.notOk(
    lines.some((l) => l.msg === 'QEMU did not quit; killing it'),
    'quit ended QEMU: no kill',
  );
  t.comment(`stop with a 500 ms grace: ${took} ms to QEMU's exit`);
  t.notOk(await isAlive(handle.pid), 'no QEMU process left');
  t.same(filesLeft(spec), [], 'no pid file or QMP socket left');
  t.equal(await backend.stop(handle, { graceMs: 500 }), exit, 'stopping a stopped VM returns its exit');
  t.equal(await handle.exited, exit);
});

t.test('a wedged QEMU that answers nothing is killed after the grace and quit timeouts', async (t) => {
  const spec = await specFor(t, 'console=ttyS0 panic=0');
  const lines: Array<{ msg: string; pid?: number }> = [];
  const sink = new Writable({
    write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()),
  });
  const backend = new QemuBackend({ log: pino(sink) });
  const handle = await backend.start(spec);
  startedPids.add(handle.pid);
  // A stopped process keeps its sockets open but never replies: QMP commands time out.
  process.kill(handle.pid, 'SIGSTOP');
  const began = Date.now();
  const exit = await backend.stop(handle, { graceMs: 200 });
  const took = Date.now() - began;
  t.match(exit, { code: null, signal: 'SIGKILL', reason: 'killed by SIGKILL' });
  t.ok(
    lines.some((l) => l.msg === 'QEMU did not quit; killing it'),
    'killed only after powerdown and quit went unanswered',
  );
  t.comment(`powerdown and quit time out, SIGTERM is ignored, then SIGKILL: ${took} ms`);
  t.notOk(await isAlive(handle.pid), 'no QEMU process left');
  t.same(filesLeft(spec), [], 'stale files removed after the kill');
});

t.test("start fails with QEMU's own words when the SSH port is taken", async (t) => {
  const spec = await specFor(t, 'console=ttyS0 panic=0');
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(spec.sshPort, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => squatter.close(r)));
  await t.rejects(new QemuBackend().start(spec), {
    message:
      /^QEMU exited with code 1 before it was up: .*Could not set up host forwarding rule 'tcp:127\.0\.0\.1:\d+-:22'/s,
  });
  t.match(
    await readFile(qemuPaths(spec.stateDir).stderrLog, 'utf8'),
    /^--- .*\n.*Could not set up host forwarding/s,
  );
});

t.test('start fails clearly when the QEMU binary does not exist', async (t) => {
  const spec = await specFor(t, 'console=ttyS0');
  await t.rejects(new QemuBackend({ qemuBinary: '/nonexistent/qemu-system-x86_64' }).start(spec), {
    message: /^cannot run QEMU "\/nonexistent\/qemu-system-x86_64": spawn .* ENOENT/,
  });
});

t.test('prepare removes the pid file and QMP socket a SIGKILLed QEMU left behind', async (t) => {
  const spec = await specFor(t, 'console=ttyS0 panic=0');
  await mkdir(spec.stateDir, { recursive: true });
  const { executable, argv } = buildQemuArgs(spec);
  const qemu = spawn(executable, argv, { stdio: 'ignore' });
  startedPids.add(qemu.pid!);
  const paths = qemuPaths(spec.stateDir);
  for (let i = 0; i < 200 && !(existsSync(paths.qmpSocket) && existsSync(paths.pidFile)); i++)
    await sleep(25);
  const backend = new QemuBackend();
  await t.rejects(backend.prepare(spec), {
    message: `a live VM (QEMU pid ${qemu.pid}) holds the state directory ${spec.stateDir}; adopt it or stop it first`,
  });
  qemu.kill('SIGKILL');
  await new Promise((r) => qemu.once('exit', r));
  t.same(filesLeft(spec).length, 2, 'SIGKILL leaves both files behind');

  await backend.prepare(spec);
  t.same(filesLeft(spec), [], 'stale files removed');

  // A pid file naming some other live process (pid reuse) is stale too.
  await writeFile(paths.pidFile, `${process.pid}\n`);
  await backend.prepare(spec);
  t.notOk(existsSync(paths.pidFile), 'a pid file of an unrelated process is removed');
});

t.test('a new backend adopts a live VM, prepare refuses to touch it, and its exit is seen', async (t) => {
  const spec = await specFor(t, 'console=ttyS0 panic=0');
  const first = new QemuBackend();
  const started = await first.start(spec);
  startedPids.add(started.pid);
  const record = structuredClone(started.record);

  const second = new QemuBackend();
  await t.rejects(second.prepare(spec), { message: /^a live VM \(QEMU pid \d+\) holds the state directory/ });
  await t.rejects(second.start({ ...spec, sshPort: await freePort() }), {
    message: `a live VM (QEMU pid ${started.pid}) holds the state directory ${spec.stateDir}; adopt it or stop it first`,
  });
  t.same(filesLeft(spec).length, 2, "a live VM's files are kept");
  t.equal(await second.adopt({ ...record, processStartTime: '1' }), null, 'another start time: not our VM');
  t.equal(await second.adopt({ ...record, argv: [...record.argv, '-S'] }), null, 'another argv: not our VM');
  t.equal(await second.adopt({ ...record, backend: 'hyperkit' }), null, 'another backend');

  // The first daemon goes away without stopping the VM (it holds QMP's only connection).
  await first.detach(started);
  const adopted = await second.adopt(record);
  t.ok(adopted);
  t.equal(adopted!.pid, started.pid);
  t.same(adopted!.record, record);
  t.match(
    record,
    { stateDir: spec.stateDir, consoleLog: spec.consoleLog },
    'the record alone locates the VM',
  );

  process.kill(adopted!.pid, 'SIGKILL');
  const exit: VmExit = await within(adopted!.exited, 10_000, 'the adopted VM exit');
  t.match(exit, { code: null, signal: null, reason: 'exited (adopted VM, exit code unknown)' });
  t.notOk(await isAlive(adopted!.pid));
  t.same(filesLeft(spec), [], 'stale files removed once the VM is confirmed gone');
  t.equal(await second.adopt(record), null, 'a VM that is gone cannot be adopted');
});

t.test('stop works on an adopted VM and reports the reason QMP gave', async (t) => {
  const spec = await specFor(t, 'console=ttyS0 panic=0');
  const first = new QemuBackend();
  const started = await first.start(spec);
  startedPids.add(started.pid);
  await first.detach(started);

  const second = new QemuBackend();
  const adopted = await second.adopt(started.record);
  t.ok(adopted);
  const exit = await second.stop(adopted!, { graceMs: 300 });
  t.match(exit, { code: null, signal: null, reason: 'stopped by the host' });
  t.notOk(await isAlive(started.pid), 'no QEMU process left');
  t.same(filesLeft(spec), []);
});
