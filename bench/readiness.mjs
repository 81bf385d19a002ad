// Readiness and idle cost through the real linuxkitd, each beside an independent yardstick:
//  1. start → healthy (Nix answering over SSH), two ways: `linuxkitctl start --wait` (a Node
//     process started for it), and the same request and wait from this already running process
//     through the client's library (as the yardstick's QEMU is spawned from it); both vs the bare
//     QEMU command line the daemon itself ran (read back from its vm.json: same argv, same image)
//     → the first SSH banner byte, seen by a plain TCP connect/read loop (not the project's probe);
//  2. daemon + QEMU CPU while idle and healthy, from /proc/<pid>/stat (utime + stime), as % of one
//     core, beside the bare QEMU's own idle CPU over the same time (the guest's floor, no checks).
// A benchmark, not a test. Linux only (reads /proc). Run after `npx tsc -p tsconfig.json`:
//   node bench/readiness.mjs [--runs 3] [--idle-seconds 120] [--json]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const daemonMain = join(root, 'dist/daemon/main.js');
const ctlMain = join(root, 'dist/client/main.js');
const { LinuxkitClient } = await import(join(root, 'dist/client/api-client.js'));
const { waitUntilHealthy } = await import(join(root, 'dist/client/wait.js'));
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'idle-seconds': { type: 'string', default: '120' },
    json: { type: 'boolean' },
  },
});
const runs = Number(values.runs);
const idleMs = Number(values['idle-seconds']) * 1000;
const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** utime + stime of `pid`, in ms. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

/** CPU of each pid over `ms` of wall time, as % of one core. */
async function idleCpu(pids, ms) {
  const before = pids.map(cpuMs);
  const t0 = performance.now();
  await sleep(ms);
  const wall = performance.now() - t0;
  return pids.map((pid, i) => ((cpuMs(pid) - before[i]) / wall) * 100);
}

/** The yardstick: connect, read, close, again, until a line starting "SSH-" arrives. */
async function firstBanner(port, t0, timeoutMs = 600_000) {
  while (performance.now() - t0 < timeoutMs) {
    const got = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      const done = (v) => {
        clearTimeout(timer);
        s.destroy();
        resolve(v);
      };
      // Short, so a connection QEMU holds while the guest boots does not hold the loop.
      const timer = setTimeout(() => done(false), 250);
      s.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.startsWith('SSH-')) done(true);
      });
      s.on('error', () => done(false));
      s.on('close', () => done(false));
    });
    if (got) return performance.now() - t0;
    await sleep(20);
  }
  throw new Error(`no SSH banner on port ${port} within ${timeoutMs} ms`);
}

function ctl(socket, args, okCodes = [0]) {
  const r = spawnSync(process.execPath, [ctlMain, '--socket', socket, ...args], { encoding: 'utf8' });
  if (!okCodes.includes(r.status))
    throw new Error(`linuxkitctl ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
// status exits 3 or 4 when the builder is stopped or not healthy; the JSON is there all the same.
const status = (socket) => JSON.parse(ctl(socket, ['status', '--json'], [0, 3, 4]));

/** `linuxkitctl stop`, then until the VM is gone (stop answers once the request is accepted). */
async function stopBuilder(socket) {
  ctl(socket, ['stop']);
  for (let i = 0; ; i++) {
    const s = status(socket);
    if (s.state === 'stopped' && s.vm.pid === null) return;
    if (i > 1200) throw new Error(`the builder did not stop: ${s.state}`);
    await sleep(100);
  }
}

async function main() {
  if (!existsSync(daemonMain)) throw new Error(`${daemonMain} is missing: run npx tsc -p tsconfig.json`);
  const stateDir = mkdtempSync(join(tmpdir(), 'lk-readiness-'));
  const socket = join(stateDir, 'daemon.sock');
  const sshPort = await freePort();
  const cacheDir = process.env.LINUXKIT_IMAGE_CACHE ?? join(root, '.cache', 'images');
  const daemon = spawn(
    process.execPath,
    [daemonMain, '--state-dir', stateDir, '--accel', 'tcg', '--ssh-port', String(sshPort)],
    { env: { ...process.env, LINUXKIT_IMAGE_CACHE: cacheDir }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  let bare = null;
  const daemonExited = new Promise((r) => daemon.once('exit', r));
  // SIGTERM: the daemon powers its VM off before it exits (onSigterm "stop", the default).
  const cleanup = async () => {
    bare?.kill('SIGKILL');
    daemon.kill('SIGTERM');
    const timer = setTimeout(() => daemon.kill('SIGKILL'), 60_000);
    await daemonExited;
    clearTimeout(timer);
  };
  try {
    // The first boot may build the image: not measured.
    for (let i = 0; !existsSync(socket); i++) {
      if (i > 6000) throw new Error('linuxkitd never opened its socket');
      await sleep(100);
    }
    for (let i = 0; !status(socket).healthy; i++) {
      if (i > 1800) throw new Error('the first boot never became healthy');
      await sleep(500);
    }
    const record = JSON.parse(readFileSync(join(stateDir, 'vm.json'), 'utf8'));
    const argv =
      basename(record.argv[0] ?? '') === basename(record.executable) ? record.argv.slice(1) : record.argv;
    await stopBuilder(socket);

    const daemonMs = [];
    const apiMs = [];
    const bareMs = [];
    const bootToReady = [];
    const probeLatency = [];
    for (let i = 0; i < runs; i++) {
      // Alternate, so a drift in the machine's load touches both alike.
      rmSync(join(stateDir, 'qmp.sock'), { force: true });
      const t0 = performance.now();
      bare = spawn(record.executable, argv, { stdio: 'ignore' });
      bareMs.push(await firstBanner(sshPort, t0));
      const gone = new Promise((r) => bare.once('exit', r));
      bare.kill('SIGKILL');
      await gone;
      bare = null;

      const t1 = performance.now();
      ctl(socket, ['start', '--wait', '--timeout', '600']);
      daemonMs.push(performance.now() - t1);
      const s = status(socket);
      bootToReady.push(s.vm.bootToReadyMs);
      probeLatency.push(s.probe.latencyMs);
      await stopBuilder(socket);

      // What `start --wait` does, without a process start: the request and the same wait.
      const client = new LinuxkitClient({ socketPath: socket });
      const t2 = performance.now();
      await client.start();
      const outcome = await waitUntilHealthy(client, { notPid: null, timeoutMs: 600_000 });
      apiMs.push(performance.now() - t2);
      if (!outcome.ok) throw new Error(`start through the API: ${outcome.why}`);
      if (i < runs - 1) await stopBuilder(socket);
    }

    // Idle and healthy: let the first maintenance pass and the boot's tail settle first.
    await sleep(15_000);
    const healthy = status(socket);
    if (!healthy.healthy) throw new Error(`not healthy before the idle measurement: ${healthy.state}`);
    const [daemonIdle, qemuIdle] = await idleCpu([daemon.pid, healthy.vm.pid], idleMs);
    const after = status(socket);
    await stopBuilder(socket);

    rmSync(join(stateDir, 'qmp.sock'), { force: true });
    const t2 = performance.now();
    bare = spawn(record.executable, argv, { stdio: 'ignore' });
    await firstBanner(sshPort, t2);
    await sleep(15_000);
    const [bareIdle] = await idleCpu([bare.pid], idleMs);
    bare.kill('SIGKILL');
    bare = null;

    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const result = {
      runs,
      load,
      startToHealthyMs: { median: Math.round(median(daemonMs)), all: daemonMs.map(Math.round) },
      bareToBannerMs: { median: Math.round(median(bareMs)), all: bareMs.map(Math.round) },
      ratio: Number((median(daemonMs) / median(bareMs)).toFixed(3)),
      apiStartToHealthyMs: { median: Math.round(median(apiMs)), all: apiMs.map(Math.round) },
      apiRatio: Number((median(apiMs) / median(bareMs)).toFixed(3)),
      statusBootToReadyMs: bootToReady,
      statusProbeLatencyMs: probeLatency,
      idle: {
        seconds: idleMs / 1000,
        daemonPct: Number(daemonIdle.toFixed(2)),
        qemuPct: Number(qemuIdle.toFixed(2)),
        togetherPct: Number((daemonIdle + qemuIdle).toFixed(2)),
        bareQemuPct: Number(bareIdle.toFixed(2)),
        ratio: Number(((daemonIdle + qemuIdle) / bareIdle).toFixed(2)),
        sshLatencyMs: after.probe.sshLatencyMs,
      },
    };
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      const r = result;
      console.log(`readiness and idle cost, tcg, ${runs} runs (median), load at the end ${load}`);
      console.log(
        `  start → healthy (linuxkitctl start --wait):  ${r.startToHealthyMs.median} ms  [${r.startToHealthyMs.all.join(', ')}]`,
      );
      console.log(
        `  bare QEMU, same argv → first SSH banner:     ${r.bareToBannerMs.median} ms  [${r.bareToBannerMs.all.join(', ')}]`,
      );
      console.log(
        `  start → healthy (the API, from this process): ${r.apiStartToHealthyMs.median} ms  [${r.apiStartToHealthyMs.all.join(', ')}]`,
      );
      console.log(`  ratio ${r.ratio} through linuxkitctl, ${r.apiRatio} through the API (target ≤ 1.15)`);
      console.log(
        `  status: vm.bootToReadyMs [${bootToReady.join(', ')}], probe.latencyMs [${probeLatency.join(', ')}]`,
      );
      console.log(`idle and healthy, ${r.idle.seconds} s, % of one core:`);
      console.log(
        `  linuxkitd ${r.idle.daemonPct} + QEMU ${r.idle.qemuPct} = ${r.idle.togetherPct} (target ≤ 1)`,
      );
      console.log(`  bare QEMU, idle, no checks: ${r.idle.bareQemuPct}  ratio ${r.idle.ratio}`);
    }
  } finally {
    await cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
