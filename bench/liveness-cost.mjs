// What the liveness check between Nix probes costs an idle guest, beside its yardstick: QEMU's CPU
// (utime + stime from /proc/<pid>/stat) over the same time with nothing checking it. One bare QEMU
// with the daemon's argv (2 GiB, as the daemon's default) boots the cached image; after the boot
// settles, rounds alternate:
//   nothing          no connection at all (the guest's floor)
//   banner           the SSH banner on a fresh connection every interval (the check before
//                    guest-link.ts: one fork of the guest's SSH server each time)
//   kept connection  GuestLink.check every interval (one global request on one kept connection)
// A benchmark, not a test. Linux only (reads /proc). Run after `npx tsc -p tsconfig.json`:
//   node bench/liveness-cost.mjs [--seconds 60] [--interval-ms 15000] [--rounds 2] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchGuestTarget, benchImageVmSpec, benchQemuCommand, cachedGuestImage, load } from './common.mjs';

const { ensureBuilderKeys } = await load('daemon/keys/builder-keys.js');
const { awaitSshBanner } = await load('daemon/probe/ssh-banner.js');
const { GuestLink } = await load('daemon/probe/guest-link.js');

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'interval-ms': { type: 'string', default: '15000' },
    rounds: { type: 'string', default: '2' },
    json: { type: 'boolean' },
  },
});
const seconds = Number(values.seconds);
const intervalMs = Number(values['interval-ms']);
const rounds = Number(values.rounds);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const image = await cachedGuestImage('x86_64');
const work = mkdtempSync(join(tmpdir(), 'lk-bench-liveness-'));
const keys = await ensureBuilderKeys(join(work, 'keys'));
const spec = await benchImageVmSpec('x86_64', image, { stateDir: work, keys }, { memoryMiB: 2048 });
const target = benchGuestTarget(spec.sshPort, keys);
const { executable, argv } = await benchQemuCommand(spec);
const qemu = spawn(executable, argv, { stdio: 'ignore' });
const link = new GuestLink(() => target);

/** QEMU's CPU time so far, in ms. */
function qemuCpuMs() {
  const fields = readFileSync(`/proc/${qemu.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

const checks = {
  nothing: null,
  banner: async () => {
    const got = await awaitSshBanner(target.host, target.port, { deadlineMs: 10_000, retryEveryMs: 1000 });
    got.socket.destroy();
  },
  'kept connection': () => link.check({ deadlineMs: 10_000 }),
};

async function measure(check) {
  const cpu0 = qemuCpuMs();
  const t0 = Date.now();
  let n = 0;
  while (Date.now() - t0 < seconds * 1000) {
    if (check) {
      await check();
      n++;
    }
    await sleep(intervalMs);
  }
  const elapsed = Date.now() - t0;
  return { cpuMs: qemuCpuMs() - cpu0, percent: ((qemuCpuMs() - cpu0) / elapsed) * 100, checks: n };
}

const results = Object.fromEntries(Object.keys(checks).map((k) => [k, []]));
try {
  const banner = await awaitSshBanner(target.host, target.port, { deadlineMs: 300_000, retryEveryMs: 50 });
  banner.socket.destroy();
  await sleep(30_000); // the boot's tail (free page reporting, the first worker) settles
  await link.check({ deadlineMs: 10_000 }); // opened once, as the daemon does after the first check
  for (let r = 0; r < rounds; r++) {
    for (const [name, check] of Object.entries(checks)) results[name].push(await measure(check));
  }
} finally {
  link.close();
  qemu.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}

if (values.json) console.log(JSON.stringify({ seconds, intervalMs, results }, null, 2));
else {
  console.log(
    `liveness check cost, tcg, x86_64 guest ${image.hash}, a check every ${intervalMs} ms, ${seconds} s per round:`,
  );
  for (const [name, runs] of Object.entries(results)) {
    const pct = runs.map((x) => x.percent.toFixed(2)).join(', ');
    const per = runs.map((x) => (x.checks ? `${Math.round(x.cpuMs / x.checks)} ms` : '-')).join(', ');
    console.log(`  ${name.padEnd(16)} QEMU ${pct} % of a core  (QEMU CPU per check incl. the floor: ${per})`);
  }
}
