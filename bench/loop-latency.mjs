// Does the daemon's loop wait on slow work? GET /v1/status latency of a real linuxkitd while it
// builds the guest image from a cold cache (the builder runs as a child process beside it), against
// a yardstick: a bare node HTTP server on a Unix socket answering a fixed status body while the same
// build runs beside it. Goal: the daemon's slowest answer under 50 ms. Run after `npx tsc -p tsconfig.json`:
//   node bench/loop-latency.mjs [--seconds 20] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '20' }, json: { type: 'boolean', default: false } },
});
const seconds = Number(values.seconds);

function get(socketPath, path) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

async function sample(socketPath, ms) {
  const times = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const t0 = performance.now();
    await get(socketPath, '/v1/status');
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { count: times.length, medianMs: at(0.5), p99Ms: at(0.99), maxMs: times[times.length - 1] };
}

async function waitForSocket(socketPath, deadlineMs) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return JSON.parse(await get(socketPath, '/v1/status'));
    } catch {
      if (Date.now() > end) throw new Error(`no answer on ${socketPath}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The daemon, building the image from a cold cache. */
async function daemonRun(work) {
  const stateDir = join(work, 'state');
  const socket = join(stateDir, 'daemon.sock');
  const daemon = spawn(
    process.execPath,
    [join(root, 'dist/daemon/main.js'), '--state-dir', stateDir, '--accel', 'tcg', '--ssh-port', '39922'],
    {
      env: { ...process.env, LINUXKIT_IMAGE_CACHE: join(work, 'cold-daemon') },
      stdio: 'ignore',
    },
  );
  try {
    const first = await waitForSocket(socket, 60_000);
    if (first.state !== 'starting')
      throw new Error(`expected the daemon to be building (starting), got ${first.state}`);
    return await sample(socket, seconds * 1000);
  } finally {
    daemon.kill('SIGKILL');
  }
}

/** The yardstick: a bare node server with the same build beside it. */
async function bareRun(work) {
  const socket = join(work, 'bare.sock');
  const body = JSON.stringify({ state: 'starting', healthy: false });
  const server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(body),
  );
  await new Promise((r) => server.listen(socket, r));
  const { debianSettingsForHost } = await import(join(root, 'dist/daemon/image/image-settings.js'));
  const { imageBuilderArgs } = await import(join(root, 'dist/daemon/image/build-process.js'));
  const { settings } = await debianSettingsForHost({
    suites: ['bookworm', 'bookworm-updates', 'bookworm-security'],
  });
  const builder = spawn(
    process.execPath,
    imageBuilderArgs({
      arch: 'x86_64',
      cacheDir: join(work, 'cold-bare'),
      guestDir: join(root, 'guest'),
      settings,
    }),
    { stdio: 'ignore' },
  );
  try {
    await new Promise((r) => setTimeout(r, 1000));
    return await sample(socket, seconds * 1000);
  } finally {
    builder.kill('SIGKILL');
    server.close();
  }
}

const work = mkdtempSync(join(tmpdir(), 'lk-bench-loop-'));
try {
  writeFileSync(join(work, 'note'), 'bench/loop-latency.mjs\n');
  const bare = await bareRun(work);
  const daemon = await daemonRun(work);
  const result = { seconds, daemon, bare, goalMaxMs: 50 };
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const line = (name, r) =>
      `${name.padEnd(34)} ${String(r.count).padStart(6)} answers  median ${r.medianMs.toFixed(1)} ms  p99 ${r.p99Ms.toFixed(1)} ms  max ${r.maxMs.toFixed(1)} ms`;
    process.stdout.write(`GET /v1/status during a cold image build (${seconds} s each)\n`);
    process.stdout.write(`${line('linuxkitd', daemon)}\n${line('bare node server (yardstick)', bare)}\n`);
    process.stdout.write(`goal: linuxkitd max under 50 ms: ${daemon.maxMs < 50 ? 'met' : 'NOT met'}\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
