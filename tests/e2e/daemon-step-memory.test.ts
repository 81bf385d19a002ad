// The reconcile step's memory outlives the daemon: a linuxkitd killed with SIGKILL (as a crash,
// or launchd/systemd replacing it) comes back in `failed` with the same reason and starts no VM,
// or resumes the very backoff deadline it was waiting for; a corrupt memory file is logged and
// replaced, never a crash loop. The VM cannot boot here (its kernel is missing), so QEMU is
// spawned and fails at once: no guest boots in this file.
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StateEvent } from '../../daemon/controller.js';
import { defaultConfig } from '../../daemon/config/load.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { startTestDaemon, type DaemonUnderTest } from '../helpers/daemon-process.js';
import { killQemus, qemuPidsFor, recordEvents, writeConfig } from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');

const daemons: DaemonUnderTest[] = [];
const stateDirs: string[] = [];
t.teardown(() => {
  for (const d of daemons) d.proc.kill('SIGKILL');
  for (const dir of stateDirs) killQemus(dir);
});

/** A state directory whose config names a kernel that does not exist. */
async function brokenBuilder(restart: Record<string, number>): Promise<string> {
  const stateDir = await tempDir('mem');
  stateDirs.push(stateDir);
  const missing = join(stateDir, 'no-such-kernel');
  const base = defaultConfig();
  await writeConfig(stateDir, {
    ...base,
    image: { kernel: missing, initrd: missing, cmdline: 'console=ttyS0' },
    restart: { ...base.restart, multiplier: 2, jitter: 0, ...restart },
  });
  return stateDir;
}

async function daemonOn(stateDir: string, sshPort?: number): Promise<DaemonUnderTest> {
  const d = await startTestDaemon({ stateDir, sshPort, readyTimeoutMs: 120_000 });
  daemons.push(d);
  return d;
}

async function killHard(d: DaemonUnderTest): Promise<void> {
  d.proc.kill('SIGKILL');
  await d.exited;
}

const starts = (events: StateEvent[]) =>
  events.filter((e) => e.type === 'state' && e.state === 'starting').length;

t.test(
  'a daemon killed while failed comes back failed, with the same reason, and starts no VM',
  async (t) => {
    const stateDir = await brokenBuilder({ initialDelayMs: 200, maxDelayMs: 1000, maxAttempts: 2 });
    const first = await daemonOn(stateDir);
    const failed = await first.waitFor((s) => s.state === 'failed', 60_000, 'state failed');
    t.match(failed.failedReason, /^gave up after 2 failed starts in a row/);
    const saved = JSON.parse(await readFile(join(stateDir, 'step-memory.json'), 'utf8'));
    t.match(
      saved,
      { version: 1, memory: { state: 'failed', failedReason: failed.failedReason } },
      'the memory file says failed',
    );
    await killHard(first);

    const second = await daemonOn(stateDir, first.sshPort);
    const rec = recordEvents(second);
    t.teardown(() => rec.close());
    const now = await second.client.status();
    t.not(now.daemon.pid, failed.daemon.pid, 'a new daemon');
    t.equal(now.state, 'failed', 'failed at once');
    t.equal(now.failedReason, failed.failedReason, 'the same reason');
    t.equal(now.vm.pid, null);
    t.match(now.lastExit, { reason: failed.lastExit!.reason }, 'the last exit is remembered too');
    await new Promise((r) => setTimeout(r, 4000));
    t.equal(starts(rec.events), 0, 'no start in 4 s');
    t.same(qemuPidsFor(stateDir), [], 'no QEMU for this state directory');
    t.equal((await second.client.status()).state, 'failed', 'still failed');
    const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
    t.match(log, /resuming from the saved step memory/);

    // An explicit start still gets a full set of attempts (and fails again here).
    const accepted = await second.client.start();
    t.equal(accepted.status.state, 'starting');
    await killHard(second);
  },
);

t.test('a daemon killed during backoff resumes the same backoff deadline', async (t) => {
  const stateDir = await brokenBuilder({ initialDelayMs: 120_000, maxDelayMs: 600_000, maxAttempts: 5 });
  const first = await daemonOn(stateDir);
  const backoff = await first.waitFor((s) => s.state === 'backoff', 60_000, 'state backoff');
  const deadline = backoff.backoff!.nextStartAt!;
  t.ok(Date.parse(deadline) - Date.now() > 60_000, `next start due at ${deadline}`);
  await killHard(first);

  const second = await daemonOn(stateDir, first.sshPort);
  const rec = recordEvents(second);
  t.teardown(() => rec.close());
  const now = await second.client.status();
  t.equal(now.state, 'backoff');
  t.same(
    now.backoff,
    { attempt: backoff.backoff!.attempt, nextStartAt: deadline },
    'the same attempt and deadline',
  );
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(starts(rec.events), 0, 'no start before the deadline');
  t.same(qemuPidsFor(stateDir), []);
  await killHard(second);
});

t.test('a corrupt memory file is logged and replaced by a fresh memory; the daemon runs on', async (t) => {
  const stateDir = await brokenBuilder({ initialDelayMs: 120_000, maxDelayMs: 600_000, maxAttempts: 5 });
  await writeFile(join(stateDir, 'step-memory.json'), '{"version": 1, "memory": {"state": "fai');
  const d = await daemonOn(stateDir);
  const s = await d.waitFor((s) => s.state === 'backoff', 60_000, 'a fresh first start, failed, in backoff');
  t.equal(s.backoff!.attempt, 2, 'counted from zero: one failed start so far');
  const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
  const line = log.split('\n').find((l) => l.includes('step memory is unreadable'));
  t.ok(line, 'one clear log line');
  t.match(line, /step-memory\.json: not JSON/);
  t.comment(`log: ${JSON.parse(line!).msg}`);
  const rewritten = JSON.parse(await readFile(join(stateDir, 'step-memory.json'), 'utf8'));
  t.match(rewritten, { version: 1, memory: { state: 'backoff' } }, 'the file is whole again');
  await killHard(d);
});
