// On-demand mode's cost, each figure beside an independent yardstick:
// - cold first build: a nix-build to a sleeping builder (the daemon boots the VM under it), from
//   the command to its output, vs a bare qemu-system command (the daemon's own argv and image, from
//   vm.json) to the guest's first SSH banner byte, read by a plain TCP loop;
// - warm build latency through the daemon's SSH endpoint vs through QEMU's forward directly (the
//   VM's internal port from vm.json), alternating, median of --runs each. The forward should cost
//   under 5 %.
// A benchmark, not a test. Run as root after `npx tsc -p tsconfig.json` (it needs nix-build):
//   node bench/on-demand.mjs [--runs 5] [--json]
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { load, median, startBenchDaemon } from './common.mjs';

const { writeHostNixDir } = await load('tests/helpers/host-nix.js');

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, json: { type: 'boolean' } },
});
const runs = Number(values.runs);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const bench = await startBenchDaemon('ondemand', {
  mode: 'on-demand',
  onDemand: { idleStopAfterMs: 3_600_000, connectTimeoutMs: 600_000 },
});
const { state, keys, sshPort } = bench;
try {
  await bench.waitFor(() => true, 'the API to answer');

  // Nix's side, as install registers it: one NIX_CONF_DIR per port (the daemon's, QEMU's forward).
  const hostNix = (name, port) =>
    writeHostNixDir({
      dir: join(state, `nix-${name}`),
      scheme: 'ssh-ng',
      port,
      keys,
      connectTimeoutSec: 600,
    });
  const build = ({ dir, sshConfig }, nonce) =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const expr = `derivation { name = "bench-${nonce}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; }`;
      execFile(
        'nix-build',
        ['--no-out-link', '--max-jobs', '0', '-E', expr],
        { env: { ...process.env, NIX_CONF_DIR: dir, NIX_SSHOPTS: `-F ${sshConfig}` } },
        (err, _out, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(performance.now() - started),
      );
    });

  const viaDaemon = await hostNix('daemon', sshPort);
  const coldMs = await build(viaDaemon, `cold-${Date.now()}`);
  const record = JSON.parse(readFileSync(join(state, 'vm.json'), 'utf8'));
  const direct = await hostNix('direct', record.sshPort);
  const warm = { daemon: [], direct: [] };
  for (let i = 0; i < runs; i++) {
    warm.daemon.push(await build(viaDaemon, `d-${Date.now()}-${i}`));
    warm.direct.push(await build(direct, `q-${Date.now()}-${i}`));
  }
  // The daemon stops its VM on SIGTERM; its files (guest files, image paths) stay for the yardstick.
  await bench.stopDaemon();

  // The yardstick: the daemon's own QEMU command line, bare, to the first SSH banner byte.
  const bannerStarted = performance.now();
  const qemu = spawn(record.argv[0], record.argv.slice(1), { stdio: 'ignore' });
  let bareMs = null;
  while (bareMs === null && performance.now() - bannerStarted < 300_000) {
    bareMs = await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port: record.sshPort });
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('SSH-') ? performance.now() - bannerStarted : null);
      });
      s.once('error', () => resolve(null));
      s.once('close', () => resolve(null));
    });
    if (bareMs === null) await sleep(50);
  }
  qemu.kill('SIGKILL');

  const result = {
    coldFirstBuildMs: Math.round(coldMs),
    bareQemuToSshBannerMs: bareMs === null ? null : Math.round(bareMs),
    warmBuildMedianMs: {
      throughDaemon: Math.round(median(warm.daemon)),
      direct: Math.round(median(warm.direct)),
    },
    forwardCost: median(warm.daemon) / median(warm.direct) - 1,
    runs,
    load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`on demand (tcg, load ${result.load}):`);
    console.log(
      `  cold first build ${result.coldFirstBuildMs} ms  vs bare QEMU to SSH banner ${result.bareQemuToSshBannerMs} ms  (ratio ${(result.coldFirstBuildMs / result.bareQemuToSshBannerMs).toFixed(2)})`,
    );
    console.log(
      `  warm build, median of ${runs}: through the daemon ${result.warmBuildMedianMs.throughDaemon} ms  vs QEMU's forward ${result.warmBuildMedianMs.direct} ms  (forward cost ${(100 * result.forwardCost).toFixed(1)} %)`,
    );
  }
} finally {
  await bench.close();
}
