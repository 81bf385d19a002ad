// Where the daemon keeps its files. The names inside the state directory live here, in one
// place, so the daemon, the CLI and the tests agree on them.
import { mkdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeJsonAtomic } from '../fs/atomic-write.js';
import { builderStateDir } from './builders.js';
import type { DaemonPathFlags } from './flags.js';
import type { DaemonConfig } from './schema.js';

export const APP_DIR_NAME = 'linuxkit-nix';

/** Environment variable that moves the state directory when no --state-dir is given. */
export const STATE_DIR_ENV = 'LINUXKIT_NIX_STATE_DIR';

/** Names inside the state directory. */
export const STATE_LAYOUT = {
  config: 'config.json',
  vmRecord: 'vm.json',
  desired: 'desired.json',
  stepMemory: 'step-memory.json',
  lock: 'daemon.lock',
  socket: 'daemon.sock',
  keysDir: 'keys',
  consoleDir: 'console',
  imageDir: 'image',
  logDir: 'log',
  daemonLog: path.join('log', 'daemon.log'),
} as const;

export type StatePaths = { stateDir: string } & { [K in keyof typeof STATE_LAYOUT]: string };

/** Absolute paths of everything in the state directory. */
export function statePaths(stateDir: string): StatePaths {
  const entries = Object.entries(STATE_LAYOUT).map(([k, name]) => [k, path.join(stateDir, name)]);
  return { stateDir, ...Object.fromEntries(entries) } as StatePaths;
}

export interface DefaultPaths {
  stateDir: string;
  configPath: string;
  socketPath: string;
}

/** The state directory of the system daemon (run by root). */
export const SYSTEM_STATE_DIR = path.join('/var/lib', APP_DIR_NAME);

/**
 * The default state directory:
 * - root, any OS: /var/lib/linuxkit-nix (a system daemon; root's home is no place for it, and
 *   nix-darwin's own builder lives under /var/lib too);
 * - macOS user: ~/Library/Application Support/linuxkit-nix (a LaunchAgent's data);
 * - other users: $XDG_STATE_HOME/linuxkit-nix, else ~/.local/state/linuxkit-nix.
 */
export function defaultStateDir(
  platform: NodeJS.Platform,
  homedir: string,
  uid: number,
  env: { XDG_STATE_HOME?: string } = {},
): string {
  return uid === 0 ? SYSTEM_STATE_DIR : userStateDir(platform, homedir, env);
}

/** The state directory of a user's own daemon (LaunchAgent, systemd --user). */
export function userStateDir(
  platform: NodeJS.Platform,
  homedir: string,
  env: { XDG_STATE_HOME?: string } = {},
): string {
  if (platform === 'darwin') return path.join(homedir, 'Library', 'Application Support', APP_DIR_NAME);
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(homedir, '.local', 'state');
  return path.join(base, APP_DIR_NAME);
}

export function defaultPaths(
  platform: NodeJS.Platform,
  homedir: string,
  uid: number,
  env: { XDG_STATE_HOME?: string } = {},
): DefaultPaths {
  const stateDir = defaultStateDir(platform, homedir, uid, env);
  return {
    stateDir,
    configPath: path.join(stateDir, STATE_LAYOUT.config),
    socketPath: path.join(stateDir, STATE_LAYOUT.socket),
  };
}

export interface HostContext {
  platform: NodeJS.Platform;
  homedir: string;
  uid: number;
  cwd: string;
}

export function currentHostContext(): HostContext {
  return {
    platform: process.platform,
    homedir: os.homedir(),
    uid: process.getuid?.() ?? -1,
    cwd: process.cwd(),
  };
}

export interface DaemonPaths extends StatePaths {
  configPath: string;
  socketPath: string;
  /** The config path came from --config (so a missing file is an error, not a first start). */
  configExplicit: boolean;
}

/**
 * Flags win, then $LINUXKIT_NIX_STATE_DIR, then the default. With --state-dir and no --config
 * the config file is `<state-dir>/config.json`. Relative paths are made absolute against `cwd`.
 * --builder NAME without --state-dir puts the state directory at `<that>/builders/NAME`.
 */
export function resolveDaemonPaths(
  flags: DaemonPathFlags,
  env: NodeJS.ProcessEnv = process.env,
  host: HostContext = currentHostContext(),
): DaemonPaths {
  const abs = (p: string) => path.resolve(host.cwd, p);
  const fromEnv = env[STATE_DIR_ENV];
  const base = fromEnv ? fromEnv : defaultStateDir(host.platform, host.homedir, host.uid, env);
  const stateDir = abs(flags.stateDir ?? builderStateDir(base, flags.builder ?? null));
  const layout = statePaths(stateDir);
  return {
    ...layout,
    configPath: flags.config !== undefined ? abs(flags.config) : layout.config,
    socketPath: flags.socket !== undefined ? abs(flags.socket) : layout.socket,
    configExplicit: flags.config !== undefined,
  };
}

/**
 * Writes `config` to `configPath` as pretty JSON (0644) when no file is there, so a first start
 * leaves an editable file showing every setting. Never replaces an existing file, even one
 * created concurrently. Returns whether it wrote the file.
 */
export async function ensureConfigFile(configPath: string, config: DaemonConfig): Promise<boolean> {
  // The state directory also holds keys: private unless it already exists.
  await mkdir(path.dirname(configPath), { recursive: true, mode: 0o700 });
  try {
    await writeJsonAtomic(configPath, config, { mode: 0o644, exclusive: true });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}
