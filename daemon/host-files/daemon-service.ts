// What launchd and systemd need to know to run linuxkitd, independent of either: the command
// line, the environment, where early output goes and how long a stop may take. The plist
// (launchd-plist.ts) and the unit (systemd-unit.ts) are renderings of this one spec.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstallLayout, InstallPlatform, InstallScope } from './install-layout.js';
import { isExecutableFile, serviceNodePath } from './node-path.js';

export interface DaemonProgram {
  /** Absolute path of the node binary the service runs: node on PATH, unresolved (node-path.ts). */
  node: string;
  /** Absolute path of dist/daemon/main.js in this checkout or package. */
  mainJs: string;
}

export interface DaemonServiceSpec {
  scope: InstallScope;
  description: string;
  programArguments: string[];
  environment: Record<string, string>;
  stdoutPath: string;
  stderrPath: string;
  /** Time between SIGTERM and SIGKILL: the VM's ACPI grace plus the daemon's hard-stop steps. */
  stopTimeoutSec: number;
  /** Least time between two starts of a daemon that keeps exiting. */
  restartDelaySec: number;
}

/** The folder holding this project's package.json, found from a module inside it. */
export function findProjectRoot(moduleUrl: string): string {
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'linuxkit-nix') return dir;
      } catch {
        // an unreadable package.json of something else: keep looking upwards
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no linuxkit-nix package.json above ${fileURLToPath(moduleUrl)}`);
    dir = parent;
  }
}

/** The daemon this install runs: the compiled entry point next to this code, under the node on PATH. */
export function currentDaemonProgram(env: NodeJS.ProcessEnv = process.env): DaemonProgram {
  const { node } = serviceNodePath(
    { pathEnv: env.PATH, platform: process.platform, isExecutable: isExecutableFile },
    process.execPath,
  );
  // dist/daemon/host-files/ and daemon/host-files/ both sit below the project root.
  return { node, mainJs: path.join(findProjectRoot(import.meta.url), 'dist', 'daemon', 'main.js') };
}

// launchd starts jobs with PATH=/usr/bin:/bin:/usr/sbin:/sbin, where neither Homebrew's nor
// Nix's qemu is found; systemd's default misses Nix profiles.
const BASE_PATH: Record<InstallPlatform, string[]> = {
  darwin: [
    '/opt/homebrew/bin',
    '/usr/local/bin',
    '/run/current-system/sw/bin',
    '/nix/var/nix/profiles/default/bin',
    '/usr/bin',
    '/bin',
    '/usr/sbin',
    '/sbin',
  ],
  linux: [
    '/run/current-system/sw/bin',
    '/nix/var/nix/profiles/default/bin',
    '/usr/local/bin',
    '/usr/bin',
    '/bin',
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
  ],
};

/**
 * PATH for the daemon: folders where the installing shell found the backends' tools first (so
 * what worked at install keeps working), then the user's Nix profiles, then the usual places.
 */
export function servicePath(
  layout: Pick<InstallLayout, 'platform' | 'scope' | 'user'>,
  toolDirs: string[],
): string {
  const userDirs =
    layout.scope === 'user'
      ? [path.join(layout.user.home, '.nix-profile', 'bin'), `/etc/profiles/per-user/${layout.user.name}/bin`]
      : [];
  const dirs = [...toolDirs, ...userDirs, ...BASE_PATH[layout.platform]];
  return [...new Set(dirs)].join(':');
}

/** A named builder's daemon is told its name (the paths above already place it; status and ps show it). */
function builderArgs(layout: Pick<InstallLayout, 'builder'>): string[] {
  return layout.builder ? ['--builder', layout.builder] : [];
}

export function daemonServiceSpec(
  layout: InstallLayout,
  program: DaemonProgram,
  config: { stopGraceMs: number },
  toolDirs: string[] = [],
): DaemonServiceSpec {
  return {
    scope: layout.scope,
    description: `linuxkit-nix: Linux builder VM for Nix (linuxkitd${layout.builder ? `, builder ${layout.builder}` : ''})`,
    programArguments: daemonArgv(program, layout),
    environment: { PATH: servicePath(layout, toolDirs) },
    stdoutPath: layout.stdoutLog,
    stderrPath: layout.stderrLog,
    // system_powerdown waits stopGraceMs; then QMP quit, SIGTERM and SIGKILL take up to ~7 s.
    stopTimeoutSec: Math.ceil(config.stopGraceMs / 1000) + 10,
    restartDelaySec: 10,
  };
}

/** The daemon's argv: node, main.js and where its config, state and socket are. */
function daemonArgv(program: DaemonProgram, layout: InstallLayout): string[] {
  // biome-ignore format: option and value pairs, one per line, read as the command line
  return [
    program.node, program.mainJs,
    '--config', layout.configPath,
    '--state-dir', layout.stateDir,
    '--socket', layout.socketPath,
    ...builderArgs(layout),
  ];
}

/** The daemon's command line as a shell would take it, for messages ("to try it from here: ..."). */
export function daemonCommandLine(program: DaemonProgram, layout: InstallLayout): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return daemonArgv(program, layout).map(q).join(' ');
}
