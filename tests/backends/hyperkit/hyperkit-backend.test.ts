// The hyperkit backend itself, driving the STAND-IN hyperkit and vpnkit
// (tests/fixtures/hyperkit-standin): start order, the SSH bridge, the console, each way a VM
// ends, stale and live pid files, adoption. The supervisor-driven paths are in
// supervisor-lifecycle.test.ts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hyperkitPaths } from '../../../daemon/backends/hyperkit/args.js';
import { readConsoleRing } from '../../../daemon/backends/hyperkit/console-ring.js';
import { readProcessIdentity } from '../../../daemon/process/identity.js';
import {
  eventually,
  guestCommand,
  probeThroughBridge,
  readText,
  runtimeFilesLeft,
  standinBackend,
  standinsIn,
  standinSpec,
} from './standin-env.js';

const up = (port: number) =>
  eventually('the guest SSH answering', 10_000, () => probeThroughBridge(port).catch(() => null));
const noStandins = (stateDir: string) => {
  const s = standinsIn(stateDir);
  return s.hyperkit.length === 0 && s.vpnkit.length === 0;
};

t.test(
  'start: vpnkit first, hyperkit once its sockets exist; SSH through the bridge; keys and console',
  async (t) => {
    const spec = await standinSpec(t);
    const backend = standinBackend();
    await backend.prepare(spec);
    const handle = await backend.start(spec);
    const p = hyperkitPaths(spec.stateDir);

    t.equal(handle.record.backend, 'hyperkit');
    t.equal((await readFile(p.pidFile, 'utf8')).trim(), String(handle.pid), 'hyperkit wrote its pid file');
    const vpnkit = handle.record.extra?.vpnkit as { pid: number; argv: string[] };
    t.equal(
      (await readFile(p.vpnkitPidFile, 'utf8')).trim(),
      String(vpnkit.pid),
      'the backend wrote vpnkit.pid',
    );
    // hyperkit may write its pid file before this line reaches its log: wait for the line.
    t.match(
      await eventually("hyperkit's log to say whether vpnkit's socket was there", 10_000, async () => {
        const log = await readText(p.hyperkitLog);
        return /vpnkit socket present at start/.test(log) ? log : null;
      }),
      /standin: vpnkit socket present at start: yes/,
      "vpnkit's socket existed when hyperkit started",
    );
    const uuid = (await readFile(p.uuidFile, 'utf8')).trim();
    // vpnkit logs the connection asynchronously: wait for the line rather than read once.
    const connected = new RegExp(`ethernet: VM connected, uuid=${uuid}`);
    t.match(
      await eventually('vpnkit to log the VM connection', 10_000, async () =>
        (await readText(p.vpnkitLog)).match(connected) ? readText(p.vpnkitLog) : null,
      ),
      connected,
      'vpnkit saw the kept UUID',
    );
    t.same((await readProcessIdentity(vpnkit.pid))?.argv.slice(2), [
      '--ethernet',
      p.ethSocket,
      '--port',
      p.portSocket,
      '--vsock-path',
      p.connectSocket,
    ]);

    const probe = await up(spec.sshPort);
    t.equal(probe.nixVersion, '2.24.9', 'the guest answered over the vsock bridge');

    const lines = await readConsoleRing(p.consoleRing, 50);
    t.ok(
      lines.some((l) => l.endsWith('guest file: /guest-files/linuxkit/authorized_keys (55 bytes)')),
      'the client key reached the guest',
    );
    t.ok(
      lines.some((l) => l.includes('guest file: /guest-files/linuxkit/ssh_host_ed25519_key')),
      'the host key reached the guest',
    );
    t.equal(
      (await readFile(p.bootInitrd)).subarray(0, 18).toString(),
      'placeholder initrd',
      'the boot initrd starts with the image initrd',
    );

    const exit = await backend.stop(handle, { graceMs: 5000 });
    t.match(exit, { code: 0, signal: null, reason: 'guest powered off' });
    t.match(
      await readText(spec.consoleLog),
      /linuxkit-nix: ssh ready[\s\S]*reboot: Power down/,
      'the console log holds the whole boot',
    );
    t.ok(noStandins(spec.stateDir), 'neither hyperkit nor vpnkit is left');
    t.same(runtimeFilesLeft(spec), [], 'pid files, sockets and the boot initrd are gone');

    // The UUID outlives the VM, so the next boot keeps the guest's address.
    const again = await backend.start({ ...spec, consoleLog: spec.consoleLog.replace('boot-1', 'boot-2') });
    t.equal((await readFile(p.uuidFile, 'utf8')).trim(), uuid);
    t.ok(
      again.record.argv.some((a) => a.endsWith(`uuid=${uuid}`)),
      'the second boot uses the same UUID',
    );
    await backend.stop(again, { graceMs: 5000 });
  },
);

t.test('the guest ends the VM: poweroff 0, reboot 2, triple fault 3, other 100', async (t) => {
  const cases = [
    ['poweroff', { code: 0, reason: 'guest powered off' }],
    ['reboot', { code: 2, reason: 'guest rebooted', reboot: true }],
    ['triple-fault', { code: 3, reason: /^guest triple fault/ }],
    [
      'hyperkit-fail',
      { code: 100, reason: 'hyperkit failed (exit code 100): vmexit_suspend: invalid reason 7' },
    ],
  ] as const;
  for (const [command, want] of cases) {
    const spec = await standinSpec(t);
    const backend = standinBackend();
    const handle = await backend.start(spec);
    await up(spec.sshPort);
    await guestCommand(spec.sshPort, command);
    const exit = await handle.exited;
    t.match(exit, { signal: null, ...want }, command);
    if (!('reboot' in want)) t.notOk('reboot' in exit, `${command} is not a reboot`);
    t.ok(noStandins(spec.stateDir), `${command}: vpnkit was stopped after hyperkit`);
    t.same(runtimeFilesLeft(spec), [], `${command}: nothing left behind`);
  }
});

t.test('stop before the guest enabled ACPI: SIGTERM ends hyperkit outright', async (t) => {
  const spec = await standinSpec(t, 'standin.boot_ms=600000');
  const backend = standinBackend();
  const handle = await backend.start(spec);
  const exit = await backend.stop(handle, { graceMs: 5000 });
  t.match(exit, { code: null, signal: 'SIGTERM', reason: 'killed by SIGTERM' });
  t.ok(noStandins(spec.stateDir));
  t.same(runtimeFilesLeft(spec), [], "hyperkit's pid file, left by the signal, is removed");
});

t.test('a guest that ignores the power button is killed after the grace; stop is idempotent', async (t) => {
  const spec = await standinSpec(t);
  const backend = standinBackend();
  const handle = await backend.start(spec);
  await up(spec.sshPort);
  await guestCommand(spec.sshPort, 'acpid-stop');
  const began = Date.now();
  const [exit, again] = await Promise.all([
    backend.stop(handle, { graceMs: 1500 }),
    backend.stop(handle, { graceMs: 1500 }),
  ]);
  t.equal(exit, again, 'concurrent stops share one outcome');
  t.match(exit, { code: null, signal: 'SIGKILL', reason: 'killed by SIGKILL' });
  t.ok(Date.now() - began >= 1500, 'the guest had its grace first');
  t.match(await readConsoleRing(hyperkitPaths(spec.stateDir).consoleRing, 2), [
    /power button pressed \(SIGTERM\)/,
    /nobody handles the power button/,
  ]);
  t.ok(noStandins(spec.stateDir));
  t.same(runtimeFilesLeft(spec), []);
  t.equal(await backend.stop(handle, { graceMs: 700 }), exit, 'stopping a stopped VM returns its exit');
  await t.rejects(backend.stop(handle, { graceMs: -1 }), {
    message: 'graceMs must be a number >= 0, got -1',
  });
});

t.test('SIGKILL from outside is a crash; the leftover pid file is cleaned up', async (t) => {
  const spec = await standinSpec(t);
  const backend = standinBackend();
  const handle = await backend.start(spec);
  process.kill(handle.pid, 'SIGKILL');
  t.match(await handle.exited, { code: null, signal: 'SIGKILL', reason: 'killed by SIGKILL' });
  t.ok(noStandins(spec.stateDir));
  t.same(runtimeFilesLeft(spec), []);
});

t.test('vpnkit dying takes the VM down: the guest powers off on the lost link', async (t) => {
  const spec = await standinSpec(t);
  const backend = standinBackend();
  const handle = await backend.start(spec);
  await up(spec.sshPort);
  const vpnkitPid = (handle.record.extra!.vpnkit as { pid: number }).pid;
  process.kill(vpnkitPid, 'SIGKILL');
  const exit = await handle.exited;
  t.match(exit, {
    code: 0,
    reason: 'vpnkit was killed by SIGKILL; the VM went down with it (hyperkit exited with code 0)',
  });
  t.notOk('reboot' in exit);
  t.match(await readText(spec.consoleLog), /power button pressed \(vpnkit connection lost\)/);
  t.ok(noStandins(spec.stateDir));
  t.same(runtimeFilesLeft(spec), []);
});

t.test(
  'vpnkit dying before the guest enabled ACPI: the backend stops hyperkit after the grace',
  async (t) => {
    const spec = await standinSpec(t, 'standin.boot_ms=600000');
    const backend = standinBackend({ vpnkitLossGraceMs: 300 });
    const handle = await backend.start(spec);
    process.kill((handle.record.extra!.vpnkit as { pid: number }).pid, 'SIGTERM');
    t.match(await handle.exited, {
      signal: 'SIGTERM',
      reason: 'vpnkit was killed by SIGTERM; the VM went down with it (hyperkit was killed by SIGTERM)',
    });
    t.ok(noStandins(spec.stateDir));
  },
);

t.test(
  'a stale pid file (dead pid, or a live process that is not hyperkit) is removed before the start',
  async (t) => {
    const dead = spawnSync('true').pid!;
    for (const [what, pid] of [
      ['a dead pid', dead],
      ['a live non-hyperkit pid', process.pid],
    ] as const) {
      const spec = await standinSpec(t);
      const backend = standinBackend();
      await backend.prepare(spec); // creates the state directory
      const p = hyperkitPaths(spec.stateDir);
      await writeFile(p.pidFile, String(pid));
      await writeFile(p.connectSocket, 'stale');
      await backend.prepare(spec);
      t.notOk(existsSync(p.pidFile), `${what}: the pid file is gone`);
      t.notOk(existsSync(p.connectSocket), `${what}: the stale connect socket is gone`);
      const handle = await backend.start(spec);
      t.equal(
        (await readFile(p.pidFile, 'utf8')).trim(),
        String(handle.pid),
        `${what}: hyperkit (O_EXCL) could start`,
      );
      await backend.stop(handle, { graceMs: 5000 });
    }
  },
);

t.test('without the cleanup, the stale pid file blocks hyperkit as it would the real one', async (t) => {
  const spec = await standinSpec(t);
  const backend = standinBackend();
  await backend.prepare(spec);
  const p = hyperkitPaths(spec.stateDir);
  // A pid file that appears between the cleanup and hyperkit's start: hyperkit refuses it.
  const squat = setInterval(() => void writeFile(p.pidFile, '1', { flag: 'wx' }).catch(() => {}), 1);
  t.teardown(() => clearInterval(squat));
  await t.rejects(backend.start(spec), {
    message: /^hyperkit exited with code 1 before it was up: .*Failed to set up pidfile/s,
  });
  clearInterval(squat);
  t.ok(noStandins(spec.stateDir), 'vpnkit was stopped after the failed start');
});

t.test(
  'a live hyperkit is refused by prepare and start (as QEMU is); adopt(record) takes it over',
  async (t) => {
    const spec = await standinSpec(t);
    const first = standinBackend();
    const original = await first.start(spec);
    await up(spec.sshPort);
    await first.detach(original); // the daemon went away, leaving the VM

    const second = standinBackend();
    const refusal = `a live VM (hyperkit pid ${original.pid}) holds the state directory ${spec.stateDir}; adopt it or stop it first`;
    await t.rejects(second.prepare(spec), { message: refusal });
    await t.rejects(second.start(spec), { message: refusal });
    t.equal(
      (await readFile(hyperkitPaths(spec.stateDir).pidFile, 'utf8')).trim(),
      String(original.pid),
      'the live pid file is kept',
    );
    t.match(
      original.record,
      { stateDir: spec.stateDir, consoleLog: spec.consoleLog },
      'the record alone locates the VM',
    );
    const adopted = await second.adopt(structuredClone(original.record));
    t.equal(adopted?.pid, original.pid, 'adopt(record) took over the running hyperkit');
    t.same(adopted!.record.extra?.vpnkit, original.record.extra?.vpnkit, 'and its vpnkit');
    t.equal((await up(spec.sshPort)).nixVersion, '2.24.9', 'the new bridge reaches the guest');
    await guestCommand(spec.sshPort, 'poweroff');
    t.match(await adopted!.exited, {
      code: null,
      signal: null,
      reason: 'guest powered off (adopted VM; seen on its console)',
    });
    t.ok(noStandins(spec.stateDir), 'the adopted vpnkit was stopped too');
    t.same(runtimeFilesLeft(spec), []);
  },
);

t.test('adopt(record): the recorded VM is adopted; a record of a dead VM is not', async (t) => {
  const spec = await standinSpec(t);
  const first = standinBackend();
  const original = await first.start(spec);
  await up(spec.sshPort);
  await first.detach(original);

  const second = standinBackend();
  const adopted = await second.adopt(original.record);
  t.ok(adopted, 'adopted');
  t.equal(adopted!.pid, original.pid);
  await guestCommand(spec.sshPort, 'reboot');
  t.match(await adopted!.exited, {
    reason: 'guest rebooted (adopted VM; seen on its console)',
    reboot: true,
  });
  t.equal(await second.adopt(original.record), null, 'the same record once the VM is gone');
  t.equal(await second.adopt({ ...original.record, backend: 'qemu' }), null, "another backend's record");
});

t.test('an adopted VM whose vpnkit is gone is taken down', async (t) => {
  const spec = await standinSpec(t);
  const first = standinBackend();
  const original = await first.start(spec);
  await up(spec.sshPort);
  await first.detach(original);
  const vpnkitPid = (original.record.extra!.vpnkit as { pid: number }).pid;
  process.kill(vpnkitPid, 'SIGKILL');
  // The guest powers itself off when the link breaks; whether it already has, the new daemon
  // must end up with no VM and no processes.
  const second = standinBackend({ vpnkitLossGraceMs: 300 });
  const adopted = await second.adopt(original.record);
  if (adopted) t.match(await adopted.exited, { reason: /^vpnkit exited; the VM went down with it/ });
  await eventually('the stand-ins gone', 10_000, () => noStandins(spec.stateDir));
  t.pass('nothing left running');
});

t.test('an orphaned vpnkit (its hyperkit gone) is stopped by prepare', async (t) => {
  const spec = await standinSpec(t);
  const first = standinBackend();
  const original = await first.start(spec);
  await first.detach(original);
  process.kill(original.pid, 'SIGKILL');
  await eventually('hyperkit gone', 10_000, () => standinsIn(spec.stateDir).hyperkit.length === 0);
  t.equal(standinsIn(spec.stateDir).vpnkit.length, 1, 'vpnkit is still running');
  await standinBackend().prepare(spec);
  t.ok(noStandins(spec.stateDir), 'prepare stopped it');
  t.same(runtimeFilesLeft(spec), []);
});

t.test('start fails clearly and leaves nothing running', async (t) => {
  await t.test('the SSH port is taken: nothing is started', async (t) => {
    const spec = await standinSpec(t);
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(spec.sshPort, '127.0.0.1', r));
    t.teardown(() => new Promise((r) => squatter.close(r)));
    await t.rejects(standinBackend().start(spec), {
      message: `cannot listen for SSH on 127.0.0.1:${spec.sshPort}: it is already in use`,
    });
    t.ok(noStandins(spec.stateDir));
  });
  await t.test('no hyperkit binary: vpnkit is stopped again', async (t) => {
    const spec = await standinSpec(t);
    await t.rejects(standinBackend({ hyperkitBinary: '/nonexistent/hyperkit' }).start(spec), {
      message: /^cannot run hyperkit "\/nonexistent\/hyperkit": spawn .*ENOENT/,
    });
    t.ok(noStandins(spec.stateDir));
    t.same(runtimeFilesLeft(spec), []);
  });
  await t.test('no vpnkit binary', async (t) => {
    const spec = await standinSpec(t);
    await t.rejects(standinBackend({ vpnkitBinary: '/nonexistent/vpnkit' }).start(spec), {
      message: /^cannot run vpnkit "\/nonexistent\/vpnkit": spawn .*ENOENT/,
    });
  });
  await t.test('a kernel hyperkit cannot load: it aborts right after starting, and says why', async (t) => {
    const spec = await standinSpec(t);
    const kernel = `${spec.kernel}.missing`;
    // Like hyperkit, the stand-in writes its pid file before kexec loads the kernel, so the
    // abort comes either just before start() returns (it rejects) or just after (the VM exits).
    const outcome = await standinBackend()
      .start({ ...spec, kernel })
      .then(
        async (handle) => (await handle.exited).reason,
        (err: Error) => err.message,
      );
    t.match(outcome, new RegExp(`killed by SIGABRT.*: [\\s\\S]*kexec: failed to load kernel ${kernel}$`));
    t.ok(noStandins(spec.stateDir));
    t.same(runtimeFilesLeft(spec), []);
  });
  await t.test('a bad spec is refused before anything is created', async (t) => {
    const spec = await standinSpec(t);
    await t.rejects(standinBackend().prepare({ ...spec, accel: 'tcg' }), {
      message: /^accel must be "hvf" with hyperkit/,
    });
    t.notOk(existsSync(spec.stateDir));
  });
});
