// Runs the host's own Nix (Debian's nix-bin) against the builder, with --max-jobs 0 so nothing
// builds locally: either as root with a temporary NIX_CONF_DIR whose only builder is the machines
// file under test, or as a plain user through the machine's running nix-daemon and its /etc/nix.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { renderMachinesLine } from '../../daemon/host-files/machines-entry.js';
import { renderKnownHostsLine, renderSshHostEntry } from '../../daemon/host-files/ssh-config.js';

const run = promisify(execFile);

export async function writeHostNixConf(dir: string, machinesFile: string): Promise<void> {
  await writeFile(
    join(dir, 'nix.conf'),
    [
      `builders = @${machinesFile}`,
      'max-jobs = 0',
      // Root builds without the nixbld group; no network caches on these machines.
      'build-users-group =',
      'sandbox = false',
      'substituters =',
      'builders-use-substitutes = false',
      'connect-timeout = 5',
      '',
    ].join('\n'),
  );
}

/**
 * A NIX_CONF_DIR in `dir` whose only builder is the VM on 127.0.0.1:`port` (alias
 * linuxkit-builder) over `scheme`, with its pinned host key, and the SSH config Nix must use for
 * it (NIX_SSHOPTS="-F <sshConfig>"), as install would register it.
 */
export async function writeHostNixDir(opts: {
  dir: string;
  scheme: 'ssh' | 'ssh-ng';
  port: number;
  keys: { clientKey: string; hostPublicKeyLine: string };
  system?: string;
  maxJobs?: number;
  /** ssh's ConnectTimeout; on demand it must outlast the boot. */
  connectTimeoutSec?: number;
}): Promise<{ dir: string; sshConfig: string }> {
  const alias = 'linuxkit-builder';
  await mkdir(opts.dir, { recursive: true });
  const knownHosts = join(opts.dir, 'known_hosts');
  await writeFile(knownHosts, renderKnownHostsLine(alias, opts.keys.hostPublicKeyLine));
  const sshConfig = join(opts.dir, 'ssh_config');
  await writeFile(
    sshConfig,
    renderSshHostEntry({
      alias,
      port: opts.port,
      user: 'root',
      identityFile: opts.keys.clientKey,
      knownHostsFile: knownHosts,
      ...(opts.connectTimeoutSec === undefined ? {} : { connectTimeoutSec: opts.connectTimeoutSec }),
    }),
  );
  const machines = join(opts.dir, 'machines');
  await writeFile(
    machines,
    renderMachinesLine({
      uri: `${opts.scheme}://${alias}`,
      systems: [opts.system ?? 'x86_64-linux'],
      identityFile: opts.keys.clientKey,
      maxJobs: opts.maxJobs ?? 1,
      speedFactor: 1,
      supportedFeatures: [],
      mandatoryFeatures: [],
      hostPublicKeyLine: opts.keys.hostPublicKeyLine,
    }) + '\n',
  );
  await writeHostNixConf(opts.dir, machines);
  return { dir: opts.dir, sshConfig };
}

/**
 * Builds a derivation for `system` that records where it ran (`uname -n -r -m`) and returns that
 * line. `nonce` makes the derivation new each time, so it really builds.
 */
export async function buildWhereItRuns(opts: {
  /** A private NIX_CONF_DIR; absent: the machine's own (/etc/nix), as a user's build has. */
  nixConfDir?: string;
  sshConfigFile?: string;
  /** Run nix-build as this user, through the running nix-daemon (NIX_REMOTE=daemon). */
  asUser?: { uid: number; gid: number; home: string; name: string };
  system: string;
  nonce: string;
  timeoutMs?: number;
  /** Shell run in the build before it records where it ran (no double quotes). */
  prelude?: string;
}): Promise<{ output: string; log: string }> {
  const expr = `derivation {
    name = "linuxkit-where-${opts.nonce}";
    system = "${opts.system}";
    builder = "/bin/sh";
    args = [ "-c" "${opts.prelude ?? ''} echo $(uname -n) $(uname -r) $(uname -m) > $out" ];
  }`;
  const env: NodeJS.ProcessEnv = opts.asUser
    ? {
        PATH: process.env.PATH,
        HOME: opts.asUser.home,
        USER: opts.asUser.name,
        LOGNAME: opts.asUser.name,
        NIX_REMOTE: 'daemon',
      }
    : { ...process.env };
  if (opts.nixConfDir) env.NIX_CONF_DIR = opts.nixConfDir;
  if (opts.sshConfigFile) env.NIX_SSHOPTS = `-F ${opts.sshConfigFile}`;
  try {
    const { stdout, stderr } = await run('nix-build', ['--no-out-link', '--max-jobs', '0', '-E', expr], {
      env,
      timeout: opts.timeoutMs ?? 180_000,
      ...(opts.asUser ? { uid: opts.asUser.uid, gid: opts.asUser.gid, cwd: opts.asUser.home } : {}),
    });
    const outPath = stdout.trim().split('\n').pop()!;
    return { output: (await readFile(outPath, 'utf8')).trim(), log: stderr };
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`nix-build failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}
