// The store disk as users expect, against the real linuxkitd and guest (tcg), `df` inside it:
// raising diskGiB grows the store's ext4 at the next boot and keeps what it holds; a lower diskGiB
// is refused with the reason and the disk kept; ephemeral gives each boot a fresh store;
// `linuxkitctl disk reset` is refused while the builder runs and, while stopped, starts the store
// over. Five boots in all.
import t from 'tap';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StateEvent } from '../../daemon/controller.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { isHealthy, startTestDaemon } from '../helpers/daemon-process.js';
import {
  PATIENT_BOOT_MS,
  PATIENT_FILE_TIMEOUT_MS,
  PATIENT_TEST_CONFIG,
  guestRun,
  killQemus,
  recordEvents,
  waitForEvent,
  writeConfig,
} from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');
t.setTimeout(PATIENT_FILE_TIMEOUT_MS);

const GIB = 1024 ** 3;
const stateDir = await tempDir('disk');
const disk = join(stateDir, 'nix-disk.raw');
const base = { ...PATIENT_TEST_CONFIG, diskGiB: 1 };
await writeConfig(stateDir, base);
const daemon = await startTestDaemon({ stateDir });
const rec = recordEvents(daemon);
t.teardown(() => {
  rec.close();
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});

const guest = async (command: string) =>
  (await guestRun(stateDir, (await daemon.client.status()).ssh.port, command)).stdout.trim();
/** Size and use of the guest's /nix in KiB, as `df` inside the guest sees it. */
const dfNix = async () => {
  const [size, used] = (await guest("df -k /nix | awk 'NR == 2 { print $2, $3 }'")).split(' ').map(Number);
  return { sizeKiB: size!, usedKiB: used! };
};
const has = async (path: string) => (await guest(`test -e ${path} && echo yes || echo no`)) === 'yes';
const consoleLog = () => daemon.ctl(['logs', '--source', 'console', '--lines', '400']).stdout;

/** Events recorded from `from` on that match `pred` (the first such one). */
const eventSince = (from: number, pred: (e: StateEvent) => boolean, what: string) =>
  waitForEvent(rec, (e) => rec.events.indexOf(e) >= from && pred(e), 120_000, what);

/**
 * Writes the config and waits until the daemon has taken it in: its next `config` event (which
 * names only the keys that need a new VM, so a change of `ephemeral` alone names none).
 */
async function configure(config: Record<string, unknown>): Promise<void> {
  const from = rec.events.length;
  await writeConfig(stateDir, config);
  await eventSince(from, (e) => e.type === 'config', 'the config event');
}

async function bootAndWait(what: string): Promise<void> {
  const asked = Date.now();
  const r = daemon.ctl(['start', '--wait', '--timeout', String(PATIENT_BOOT_MS / 1000)]);
  if (r.code !== 0) throw new Error(`start --wait for ${what}: ${r.stderr}${r.stdout}`);
  t.comment(`${what}: start to healthy in ${Date.now() - asked} ms`);
}

async function stopAndWait(): Promise<void> {
  const r = daemon.ctl(['stop']);
  if (r.code !== 0) throw new Error(`stop: ${r.stderr}`);
  await daemon.waitFor((s) => s.state === 'stopped' && s.vm.pid === null, 120_000, 'stopped');
}

let firstSizeKiB = 0;

t.test('diskGiB 1: a 1 GiB ext4 store; disk reset is refused while the builder runs', async (t) => {
  await daemon.waitFor(isHealthy, PATIENT_BOOT_MS, 'the first boot');
  const df = await dfNix();
  t.comment(`diskGiB 1: df in the guest: /nix ${df.sizeKiB} KiB, ${df.usedKiB} KiB used`);
  t.ok(df.sizeKiB > 0.85 * 1024 * 1024 && df.sizeKiB <= 1024 * 1024, 'about 1 GiB');
  firstSizeKiB = df.sizeKiB;
  t.match(consoleLog(), /linuxkit-nix: formatting \/dev\/vda \(ext4\) for the Nix store/);
  await guest('echo kept > /nix/store/e2e-marker-kept');

  const refused = daemon.ctl(['disk', 'reset']);
  t.equal(refused.code, 1);
  t.equal(
    refused.stderr,
    'linuxkitctl: conflict: the builder is running: the store disk is reset only while the builder ' +
      'is stopped (linuxkitctl stop, then linuxkitctl disk reset)\n',
  );
  t.equal((await stat(disk)).size, GIB, 'the disk is kept');
  t.ok(isHealthy(await daemon.client.status()), 'the builder runs on');
  await stopAndWait();
});

t.test('diskGiB raised to 2: the next boot grows the ext4, the store is kept', async (t) => {
  await configure({ ...base, diskGiB: 2 });
  await bootAndWait('diskGiB 2');
  const df = await dfNix();
  t.comment(
    `diskGiB 2: df in the guest: /nix ${df.sizeKiB} KiB (was ${firstSizeKiB}), ${df.usedKiB} KiB used`,
  );
  t.ok(df.sizeKiB > 1.85 * 1024 * 1024 && df.sizeKiB <= 2 * 1024 * 1024, 'about 2 GiB');
  t.ok(df.sizeKiB > 1.9 * firstSizeKiB, 'about twice the first size');
  t.equal(await guest('cat /nix/store/e2e-marker-kept'), 'kept', 'the file written before is there');
  const log = consoleLog();
  t.match(log, /linuxkit-nix: grew the store's ext4 on \/dev\/vda to \S+ \(diskGiB was raised\)/);
  t.notMatch(log, /formatting \/dev\/vda/, 'not formatted again');
  await stopAndWait();
});

t.test('diskGiB lowered to 1: the start is refused with the reason, the disk is kept', async (t) => {
  await configure({ ...base, diskGiB: 1 });
  const from = rec.events.length;
  t.equal(daemon.ctl(['start']).code, 0);
  const exit = await eventSince(from, (e) => e.type === 'exit' && e.started === false, 'the refused start');
  t.match(
    exit.message,
    /^could not start the VM: diskGiB is 1 but the store disk \S+nix-disk\.raw is 2 GiB: .*Set diskGiB to 2 or more, or start the store over at 1 GiB with `linuxkitctl stop` and `linuxkitctl disk reset`/,
  );
  t.match((await daemon.client.status()).lastExit?.reason, /diskGiB is 1 but/);
  await stopAndWait();
  t.equal((await stat(disk)).size, 2 * GIB, 'the disk is kept at 2 GiB');
});

t.test('ephemeral: each boot has a fresh store', async (t) => {
  await configure({ ...base, diskGiB: 2, ephemeral: true });
  await bootAndWait('ephemeral, first boot');
  t.equal(await has('/nix/store/e2e-marker-kept'), false, 'the persistent store is gone');
  t.match(consoleLog(), /formatting \/dev\/vda/);
  await guest('echo one > /nix/store/e2e-marker-ephemeral');
  await stopAndWait();
  await bootAndWait('ephemeral, second boot');
  t.equal(await has('/nix/store/e2e-marker-ephemeral'), false, "the last boot's file is gone");
  t.ok(await guest('nix-store --version'), 'nix answers on the fresh store');
  // Back to a kept store: the next test writes a file that only a reset removes.
  await configure({ ...base, diskGiB: 2 });
  await guest('echo two > /nix/store/e2e-marker-reset');
  await stopAndWait();
});

t.test('disk reset while stopped: the next boot formats a fresh store', async (t) => {
  const r = daemon.ctl(['disk', 'reset']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `removed the store disk ${disk} (2 GiB); the next start formats a new, empty store\n`);
  await t.rejects(stat(disk), { code: 'ENOENT' });
  await bootAndWait('after disk reset');
  t.equal(await has('/nix/store/e2e-marker-reset'), false, 'the store started over');
  t.match(consoleLog(), /formatting \/dev\/vda/);
  const df = await dfNix();
  t.comment(`after reset: df in the guest: /nix ${df.sizeKiB} KiB, ${df.usedKiB} KiB used`);
  t.ok(df.sizeKiB > 1.85 * 1024 * 1024, 'at the size diskGiB asks');
});

t.test('SIGTERM ends the daemon and its VM', async (t) => {
  rec.close();
  daemon.proc.kill('SIGTERM');
  t.equal((await daemon.exited).code, 0);
});
