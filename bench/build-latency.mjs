// Latency of a trivial remote build through the builder's registration (ssh-ng, SSH connection
// reuse on and off): the guest hands each ssh-ng session to its resident nix-daemon
// (guest/rootfs/usr/local/bin/nix-daemon), against the yardstick of the same build with Nix
// started for every connection (remote-program=/usr/bin/nix-daemon, what ssh-ng does by default).
// Alternating, median of --runs each. A benchmark, not a test. Run as root after
// `npx tsc -p tsconfig.json` (it needs nix-build):
//   node bench/build-latency.mjs [--runs 7] [--json]
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isHealthy, load, median, startBenchDaemon } from './common.mjs';

const { writeHostNixDir } = await load('tests/helpers/host-nix.js');

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '7' }, json: { type: 'boolean' } },
});
const runs = Number(values.runs);

const bench = await startBenchDaemon('latency');
const { state, keys, sshPort: port } = bench;
try {
  await bench.waitFor(isHealthy, 'the builder to be healthy');
  const forwarded = await writeHostNixDir({ dir: join(state, 'nix'), scheme: 'ssh-ng', port, keys });
  const perConnection = await writeHostNixDir({
    dir: join(state, 'nix-plain'),
    scheme: 'ssh-ng',
    port,
    keys,
  });
  const machines = join(perConnection.dir, 'machines');
  writeFileSync(
    machines,
    readFileSync(machines, 'utf8').replace(
      'ssh-ng://linuxkit-builder',
      'ssh-ng://linuxkit-builder?remote-program=/usr/bin/nix-daemon',
    ),
  );
  const build = ({ dir, sshConfig }, reuse, nonce) =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const expr = `derivation { name = "latency-${nonce}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; }`;
      const sshOpts = `-F ${sshConfig}${reuse ? ` -o ControlMaster=auto -o ControlPath=${state}/cm-%C -o ControlPersist=60` : ''}`;
      execFile(
        'nix-build',
        ['--no-out-link', '--max-jobs', '0', '-E', expr],
        { env: { ...process.env, NIX_CONF_DIR: dir, NIX_SSHOPTS: sshOpts } },
        (err, _out, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(performance.now() - started),
      );
    });
  await build(forwarded, true, `warm-${Date.now()}`);
  const t = { forwardedReuse: [], forwarded: [], perConnectionReuse: [], perConnection: [] };
  for (let i = 0; i < runs; i++) {
    const n = `${Date.now()}-${i}`;
    t.forwardedReuse.push(await build(forwarded, true, `a-${n}`));
    t.perConnectionReuse.push(await build(perConnection, true, `b-${n}`));
    t.forwarded.push(await build(forwarded, false, `c-${n}`));
    t.perConnection.push(await build(perConnection, false, `d-${n}`));
  }
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(median(v))]));
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (values.json) console.log(JSON.stringify({ medianMs: m, runs, load: loadavg }, null, 2));
  else {
    console.log(`trivial remote build, median of ${runs} (tcg, load ${loadavg}):`);
    console.log(
      `  SSH reuse on:  resident nix-daemon ${m.forwardedReuse} ms  vs Nix started per connection ${m.perConnectionReuse} ms  (ratio ${(m.forwardedReuse / m.perConnectionReuse).toFixed(2)})`,
    );
    console.log(
      `  SSH reuse off: resident nix-daemon ${m.forwarded} ms  vs Nix started per connection ${m.perConnection} ms  (ratio ${(m.forwarded / m.perConnection).toFixed(2)})`,
    );
  }
} finally {
  await bench.close();
}
