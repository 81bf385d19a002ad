// How fast the control path is, against a FakeController-backed API server on a temporary socket
// (no VM): linuxkitctl's cold start compared with a bare `node -e 0`, the client's round trip,
// and GET /v1/status latency and throughput under load (autocannon) over the socket. Run after `npx tsc -p tsconfig.json`:
//   node bench/status.mjs [--runs 20] [--duration 5] [--connections 10] [--json]
// The server runs in a child process so the load generator does not share its event loop.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/client/main.js');

if (process.argv[2] === '--serve') {
  const { buildApiServer, listenOnUnixSocket } = await import(join(root, 'dist/daemon/api/server.js'));
  const { FakeController } = await import(join(root, 'dist/tests/api/fixtures/fake-controller.js'));
  const app = buildApiServer(new FakeController());
  await listenOnUnixSocket(app, process.argv[3]);
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
} else {
  await main();
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Wall time of one process from spawn to exit, in ms; fails loudly on a non-zero exit. */
function timeRun(args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) {
    throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  return ms;
}

async function startServer(socketPath) {
  const server = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', socketPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    server.stdout.once('data', resolve);
    server.once('exit', (code) => reject(new Error(`the bench server exited with ${code}`)));
  });
  return server;
}

async function main() {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'lk-bench-'));
  const socketPath = join(dir, 'daemon.sock');
  const server = await startServer(socketPath);
  try {
    // Interleaved, after one warm-up each, so both see the same disk cache and machine load.
    const statusArgs = [cli, '--socket', socketPath, 'status'];
    timeRun(['-e', '0']);
    timeRun(statusArgs);
    const bare = [];
    const ctl = [];
    for (let i = 0; i < runs; i++) {
      bare.push(timeRun(['-e', '0']));
      ctl.push(timeRun(statusArgs));
    }

    // One request at a time through LinuxkitClient (a new connection each, as linuxkitctl does),
    // timed with hrtime: autocannon's histogram has whole-millisecond resolution.
    const { LinuxkitClient } = await import(join(root, 'dist/client/api-client.js'));
    const client = new LinuxkitClient({ socketPath });
    const roundTrips = [];
    for (let i = 0; i < 2000; i++) {
      const start = process.hrtime.bigint();
      await client.status();
      roundTrips.push(Number(process.hrtime.bigint() - start) / 1e6);
    }

    const { default: autocannon } = await import('autocannon');
    const load = await autocannon({
      url: 'http://localhost/v1/status',
      socketPath,
      connections: Number(values.connections),
      duration: Number(values.duration),
    });
    if (load.non2xx > 0 || load.errors > 0) {
      throw new Error(
        `GET /v1/status failed under load: ${load.non2xx} non-2xx answers, ${load.errors} errors`,
      );
    }

    const report = {
      coldStart: {
        runs,
        nodeMedianMs: round(median(bare)),
        linuxkitctlStatusMedianMs: round(median(ctl)),
        ratio: round(median(ctl) / median(bare)),
      },
      clientRoundTrip: {
        requests: roundTrips.length,
        p50Ms: round(percentile(roundTrips, 50), 3),
        p99Ms: round(percentile(roundTrips, 99), 3),
      },
      getStatus: {
        connections: Number(values.connections),
        durationS: Number(values.duration),
        latencyP50Ms: load.latency.p50,
        latencyP99Ms: load.latency.p99,
        requestsPerSecond: round(load.requests.average),
        requests: load.requests.total,
      },
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const c = report.coldStart;
      const s = report.getStatus;
      const r = report.clientRoundTrip;
      process.stdout.write(
        `linuxkitctl status cold start: median ${c.linuxkitctlStatusMedianMs} ms vs node -e 0 ${c.nodeMedianMs} ms ` +
          `(ratio ${c.ratio}, ${runs} runs each)\n` +
          `LinuxkitClient.status() one at a time: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (${r.requests} requests)\n` +
          `GET /v1/status over the socket: p50 ${s.latencyP50Ms} ms, p99 ${s.latencyP99Ms} ms, ` +
          `${s.requestsPerSecond} req/s (${s.connections} connections, ${s.durationS} s, ${s.requests} requests)\n`,
      );
    }
  } finally {
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function round(n, digits = 2) {
  const scale = 10 ** digits;
  return Math.round(n * scale) / scale;
}
