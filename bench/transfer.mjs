// What bounds copying to the builder: `nix copy --to ssh-ng://` of a 100 MiB store path of random
// bytes, against the yardsticks of `ssh cat` of the same bytes (to /dev/null, and to the guest's
// tmpfs) and of hashing them in the guest (`sha256sum`, `nix-hash`): the guest's own costs under
// emulation. A benchmark, not a test. Run as root after `npx tsc -p tsconfig.json`:
//   node bench/transfer.mjs [--mib 100] [--json]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isHealthy, load, startBenchDaemon } from './common.mjs';

const { writeHostNixDir } = await load('tests/helpers/host-nix.js');

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '100' }, json: { type: 'boolean' } },
});
const mib = Number(values.mib);
const bench = await startBenchDaemon('transfer');
const { state, keys, sshPort: port } = bench;
let storePath = null;
try {
  await bench.waitFor(isHealthy, 'the builder to be healthy');
  const { dir, sshConfig } = await writeHostNixDir({ dir: join(state, 'nix'), scheme: 'ssh-ng', port, keys });
  const file = join(state, 'blob');
  writeFileSync(file, randomBytes(mib * 1024 * 1024));
  storePath = execFileSync('nix-store', ['--add', file], { encoding: 'utf8' }).trim();
  const env = { ...process.env, NIX_CONF_DIR: dir, NIX_SSHOPTS: `-F ${sshConfig}` };
  const timed = (fn) => {
    const t = performance.now();
    fn();
    return Math.round(performance.now() - t);
  };
  const ssh = (command, input) =>
    execFileSync('ssh', ['-F', sshConfig, 'linuxkit-builder', command], { input, env, maxBuffer: 1 << 30 });
  ssh('true');
  const bytes = readFileSync(file);
  const r = {
    mib,
    sshCatToNullMs: timed(() => ssh('cat > /dev/null', bytes)),
    sshCatToTmpfsMs: timed(() => ssh('cat > /tmp/blob && rm /tmp/blob', bytes)),
    nixCopyMs: timed(() =>
      execFileSync(
        'nix',
        [
          '--extra-experimental-features',
          'nix-command',
          'copy',
          '--to',
          'ssh-ng://linuxkit-builder',
          storePath,
        ],
        { env, stdio: 'ignore' },
      ),
    ),
    sha256sumInGuestMs: timed(() => ssh(`sha256sum ${storePath} > /dev/null`)),
    nixHashInGuestMs: timed(() => ssh(`nix-hash --type sha256 ${storePath} > /dev/null`)),
    load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(`copying ${mib} MiB to the builder (tcg, load ${r.load}):`);
    console.log(
      `  nix copy ${r.nixCopyMs} ms  vs ssh cat to /dev/null ${r.sshCatToNullMs} ms (ratio ${(r.nixCopyMs / r.sshCatToNullMs).toFixed(2)}), to the guest's tmpfs ${r.sshCatToTmpfsMs} ms`,
    );
    console.log(
      `  hashing it in the guest: sha256sum ${r.sha256sumInGuestMs} ms, nix-hash ${r.nixHashInGuestMs} ms`,
    );
  }
} finally {
  await bench.close();
  if (storePath) execFileSync('nix-store', ['--delete', storePath], { stdio: 'ignore' });
}
