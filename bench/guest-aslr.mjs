// What the guest's address-space randomization costs under tcg (the `guestAslr` setting), beside
// its yardstick: the same guest booted as the kernel does by default (randomization on). QEMU
// keeps translated code by its addresses, so a program placed elsewhere at every exec is
// translated again each time. Bare QEMU with the daemon's argv boots the cached image, once with
// and once without `norandmaps`, alternating; each workload then runs over SSH, timed on the host:
//   50 × nc.openbsd -h       a small dynamically linked program (what ssh-ng's forwarder runs)
//   5 × nix-store --version  Nix's own start
//   50 × /bin/sh -c true     the control: busybox-static is not position-independent, so it sits
//                            at the same address either way
// A benchmark, not a test. Run after `npx tsc -p tsconfig.json`:
//   node bench/guest-aslr.mjs [--rounds 3] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  benchGuestTarget,
  benchQemuCommand,
  benchImageVmSpec,
  cachedGuestImage,
  load,
  median,
} from './common.mjs';

const { ensureBuilderKeys } = await load('daemon/keys/builder-keys.js');
const { awaitSshBanner } = await load('daemon/probe/ssh-banner.js');
const { runGuestCommand } = await load('daemon/probe/guest-ssh.js');

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, json: { type: 'boolean' } },
});
const rounds = Number(values.rounds);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const WORKLOADS = {
  '50 × nc.openbsd -h': 'for i in $(seq 50); do /usr/bin/nc.openbsd -h 2>/dev/null; done; true',
  '5 × nix-store --version': 'for i in 1 2 3 4 5; do nix-store --version >/dev/null; done',
  '50 × sh -c true': 'for i in $(seq 50); do /bin/sh -c true; done',
};

const image = await cachedGuestImage('x86_64');
const work = mkdtempSync(join(tmpdir(), 'lk-bench-aslr-'));
const keys = await ensureBuilderKeys(join(work, 'keys'));
let qemu = null;
process.on('exit', () => qemu?.kill('SIGKILL'));

/** Boots the guest with `aslr`, runs each workload once, powers it off; ms per workload. */
async function measure(aslr) {
  const spec = await benchImageVmSpec('x86_64', image, { stateDir: work, keys }, { aslr });
  const target = benchGuestTarget(spec.sshPort, keys);
  const { executable, argv } = await benchQemuCommand(spec);
  rmSync(join(work, 'qmp.sock'), { force: true });
  qemu = spawn(executable, argv, { stdio: 'ignore' });
  try {
    const { socket } = await awaitSshBanner('127.0.0.1', spec.sshPort, {
      deadlineMs: 120_000,
      retryEveryMs: 50,
    });
    socket.destroy();
    await sleep(3000); // the boot's tail (the resident nix-daemon's first worker) settles
    const va = await runGuestCommand(target, 'cat /proc/sys/kernel/randomize_va_space', {
      deadlineMs: 30_000,
    });
    const expected = aslr ? '2' : '0';
    if (va.stdout.trim() !== expected)
      throw new Error(`randomize_va_space is ${va.stdout.trim()}, expected ${expected} (aslr ${aslr})`);
    const ms = {};
    for (const [name, command] of Object.entries(WORKLOADS)) {
      const r = await runGuestCommand(target, command, { deadlineMs: 300_000 });
      if (r.code !== 0) throw new Error(`${name} exited ${r.code}: ${r.stderr}`);
      ms[name] = r.latencyMs;
    }
    return ms;
  } finally {
    const gone = new Promise((r) => qemu.once('exit', r));
    qemu.kill('SIGKILL');
    await gone;
    qemu = null;
  }
}

const on = [];
const off = [];
for (let i = 0; i < rounds; i++) {
  on.push(await measure(true));
  off.push(await measure(false));
}
rmSync(work, { recursive: true, force: true });

const rows = Object.keys(WORKLOADS).map((name) => {
  const a = median(on.map((m) => m[name]));
  const b = median(off.map((m) => m[name]));
  return {
    workload: name,
    aslrOnMs: Math.round(a),
    aslrOffMs: Math.round(b),
    ratio: Number((b / a).toFixed(2)),
  };
});
if (values.json) {
  console.log(JSON.stringify({ rounds, rows }, null, 2));
} else {
  console.log(`guest address-space randomization under tcg, x86_64, ${rounds} rounds (median), over SSH:`);
  for (const r of rows)
    console.log(
      `  ${r.workload.padEnd(26)} randomized ${String(r.aslrOnMs).padStart(6)} ms  norandmaps ${String(r.aslrOffMs).padStart(6)} ms  ratio ${r.ratio}`,
    );
}
