// The macOS adoption path, run whole on Linux: QemuBackend with the ps identity reader
// (LINUXKIT_PROCESS_IDENTITY=ps; procps takes the same fields as Apple's ps) records a real
// QEMU (tcg, the host's kernel, no guest image), and a later "daemon" running under another
// time zone and locale adopts it, checks it, and stops it.
import t from 'tap';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmSpec } from '../../../daemon/backend.js';
import { buildQemuArgs, qemuPaths } from '../../../daemon/backends/qemu/args.js';
import { firmwareFor } from '../../../daemon/backends/qemu/firmware.js';
import { QemuBackend } from '../../../daemon/backends/qemu/qemu-backend.js';
import { readProcIdentity } from '../../../daemon/process/proc-identity.js';
import { freePort, requireTool, tempDir } from '../../helpers/env.js';

requireTool('qemu-system-x86_64');
requireTool('ps');
const kernelName = (await readdir('/boot'))
  .filter((f) => f.startsWith('vmlinuz-'))
  .sort()
  .pop();
if (!kernelName) throw new Error('no /boot/vmlinuz-* kernel: this test boots the host kernel under QEMU');

const saved = { ...process.env };
const setEnv = (vars: Record<string, string | undefined>) => {
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
};
t.teardown(() =>
  setEnv({
    LINUXKIT_PROCESS_IDENTITY: saved.LINUXKIT_PROCESS_IDENTITY,
    TZ: saved.TZ,
    LANG: saved.LANG,
    LC_ALL: saved.LC_ALL,
  }),
);

t.test('a VM recorded through ps is adopted by a daemon in another time zone and locale', async (t) => {
  const root = await tempDir('qemu-ps');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const stateDir = join(root, 'state');
  const spec: VmSpec = {
    arch: 'x86_64',
    accel: 'tcg',
    cpus: 1,
    memoryMiB: 256,
    kernel: join('/boot', kernelName),
    initrd: '',
    cmdline: 'console=ttyS0 panic=0',
    sshPort: await freePort(),
    stateDir,
    consoleLog: join(stateDir, 'console.log'),
    guestFiles: {},
  };

  setEnv({ LINUXKIT_PROCESS_IDENTITY: 'ps', TZ: 'UTC', LANG: 'C', LC_ALL: undefined });
  const first = new QemuBackend();
  const started = await first.start(spec);
  t.teardown(() => {
    try {
      process.kill(started.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  const record = structuredClone(started.record);
  t.match(
    record.processStartTime,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'start time: an ISO UTC instant from ps lstart',
  );
  t.same(
    record.argv,
    [
      [
        'qemu-system-x86_64',
        ...buildQemuArgs(spec, { firmware: await firmwareFor(spec, 'qemu-system-x86_64') }).argv,
      ].join(' '),
    ],
    'argv: the command line, joined',
  );
  t.equal(record.executable, 'qemu-system-x86', "executable: procps's comm (the 15-byte task name)");
  t.ok(await readProcIdentity(started.pid), 'the /proc reader sees the same pid alive');
  await first.detach(started);

  // The next daemon: a laptop that travelled to India and runs in German.
  setEnv({ TZ: 'Asia/Kolkata', LANG: 'de_DE.UTF-8' });
  const second = new QemuBackend();
  await t.rejects(second.prepare(spec), { message: /^a live VM \(QEMU pid \d+\) holds the state directory/ });
  t.equal(
    await second.adopt({ ...record, processStartTime: '2026-01-01T00:00:00Z' }),
    null,
    'another start time: not our VM',
  );
  const adopted = await second.adopt(record);
  t.ok(adopted, 'adopted');
  t.equal(adopted!.pid, started.pid, 'the same QEMU process');

  // In French now, the adopted VM is stopped through QMP.
  setEnv({ TZ: 'America/St_Johns', LANG: 'C', LC_ALL: 'fr_FR.UTF-8' });
  const exit = await second.stop(adopted!, { graceMs: 300 });
  t.match(exit, { code: null, signal: null, reason: 'stopped by the host' });
  t.equal(await readProcIdentity(started.pid), null, 'no QEMU process left');
  t.notOk(existsSync(qemuPaths(stateDir).pidFile), 'pid file removed');
});
