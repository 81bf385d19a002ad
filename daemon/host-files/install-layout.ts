// Where `linuxkitctl install` puts everything, per platform and scope, as a pure function, so
// install, uninstall, doctor and the tests agree on every path. With a root directory every
// path lies under it, and the files written there point under it too.
import * as path from 'node:path';
import { builderNames, builderStateDir } from '../config/builders.js';
import { SYSTEM_STATE_DIR, STATE_LAYOUT, userStateDir } from '../config/paths.js';
import { unixSocketPathLimit } from '../fs/unix-socket-path.js';
import { builderKeyPaths, type BuilderKeyPaths } from '../keys/builder-keys.js';

export type InstallScope = 'system' | 'user';
export type InstallPlatform = 'darwin' | 'linux';

// The default builder's names; a named builder's come from builderNames() (config/builders.ts).
/** The SSH host alias Nix's machines file names; the SSH drop-in maps it to 127.0.0.1:port. */
export const BUILDER_ALIAS = builderNames(null).alias;
export const LAUNCHD_LABEL = builderNames(null).launchdLabel;
export const SYSTEMD_UNIT_NAME = builderNames(null).systemdUnit;
/** Name of the managed blocks in shared files (/etc/nix/machines, the SSH drop-in). */
export const MANAGED_BLOCK_NAME = builderNames(null).blockName;
export const INSTALL_MANIFEST_NAME = 'install-manifest.json';
/**
 * Where ssh itself looks for the drop-in: Include lines name this path, never the --root one.
 * Every builder has its own block (and Host entry) in this one file.
 */
export const SSH_DROPIN_SYSTEM_PATH = '/etc/ssh/ssh_config.d/linuxkit-nix.conf';

/** The account the daemon runs as: root for --system, the user for --user. */
export interface ServiceUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface LayoutInput {
  platform: InstallPlatform;
  scope: InstallScope;
  /** Absolute directory to install under instead of '/'; null for a real install. */
  root: string | null;
  user: ServiceUser;
  /** The service user's XDG variables (empty when they are not known, e.g. under sudo). */
  env?: { XDG_STATE_HOME?: string; XDG_CONFIG_HOME?: string };
  /** A named builder (--builder NAME); absent or null: the default builder. */
  builder?: string | null;
}

export type ServiceLayout =
  | { manager: 'launchd'; label: string; file: string; domain: string }
  | { manager: 'systemd'; unit: string; file: string; userMode: boolean };

export interface InstallLayout {
  platform: InstallPlatform;
  scope: InstallScope;
  root: string | null;
  user: ServiceUser;
  /** null: the default builder. */
  builder: string | null;
  alias: string;
  /** Name of this builder's managed blocks in the machines file and the SSH drop-in. */
  blockName: string;
  /** The default builder's state directory, below which the named builders' live. */
  baseStateDir: string;
  stateDir: string;
  configPath: string;
  socketPath: string;
  keys: BuilderKeyPaths;
  knownHostsFile: string;
  /** Connection-sharing sockets (ssh ControlPath). */
  controlDir: string;
  logDir: string;
  /** launchd's StandardOutPath/StandardErrorPath: what the daemon prints before its log is open. */
  stdoutLog: string;
  stderrLog: string;
  manifestPath: string;
  nixConfDir: string;
  machinesFile: string;
  sshConfig: string;
  sshDropIn: string;
  service: ServiceLayout;
}

/** `p` (absolute) under `root`, or `p` itself for a real install. */
export function underRoot(root: string | null, p: string): string {
  return root === null ? p : path.join(root, p);
}

export function installLayout(input: LayoutInput): InstallLayout {
  const { platform, scope, root, user } = input;
  if (root !== null && !path.isAbsolute(root))
    throw new Error(`--root must be an absolute directory; got ${JSON.stringify(root)}`);
  const env = input.env ?? {};
  const at = (p: string) => underRoot(root, p);
  const names = builderNames(input.builder ?? null);
  const baseStateDir = at(scope === 'system' ? SYSTEM_STATE_DIR : userStateDir(platform, user.home, env));
  const stateDir = builderStateDir(baseStateDir, names.builder);
  const keysDir = path.join(stateDir, STATE_LAYOUT.keysDir);
  const logDir = path.join(stateDir, STATE_LAYOUT.logDir);

  let service: ServiceLayout;
  if (platform === 'darwin') {
    const dir =
      scope === 'system' ? '/Library/LaunchDaemons' : path.join(user.home, 'Library', 'LaunchAgents');
    service = {
      manager: 'launchd',
      label: names.launchdLabel,
      file: at(path.join(dir, `${names.launchdLabel}.plist`)),
      domain: scope === 'system' ? 'system' : `gui/${user.uid}`,
    };
  } else {
    const xdgConfig =
      env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME)
        ? env.XDG_CONFIG_HOME
        : path.join(user.home, '.config');
    const dir = scope === 'system' ? '/etc/systemd/system' : path.join(xdgConfig, 'systemd', 'user');
    service = {
      manager: 'systemd',
      unit: names.systemdUnit,
      file: at(path.join(dir, names.systemdUnit)),
      userMode: scope === 'user',
    };
  }

  return {
    platform,
    scope,
    root,
    user,
    builder: names.builder,
    alias: names.alias,
    blockName: names.blockName,
    baseStateDir,
    stateDir,
    configPath: path.join(stateDir, STATE_LAYOUT.config),
    socketPath: path.join(stateDir, STATE_LAYOUT.socket),
    keys: builderKeyPaths(keysDir),
    knownHostsFile: path.join(keysDir, 'known_hosts'),
    controlDir: path.join(stateDir, 'ssh'),
    logDir,
    stdoutLog: path.join(logDir, 'service.stdout.log'),
    stderrLog: path.join(logDir, 'service.stderr.log'),
    manifestPath: path.join(stateDir, INSTALL_MANIFEST_NAME),
    nixConfDir: at('/etc/nix'),
    machinesFile: at('/etc/nix/machines'),
    sshConfig: at('/etc/ssh/ssh_config'),
    sshDropIn: at(SSH_DROPIN_SYSTEM_PATH),
    service,
  };
}

/**
 * The default scope: a multi-user Nix (nix-daemon, run by root) gets a system daemon, so root's
 * nix-daemon and the builder share one machine-wide registration; a single-user Nix gets a
 * per-user one.
 */
export function defaultScope(facts: {
  nixDaemonSocketExists: boolean;
  nixRemote?: string;
  processUid?: number;
}): InstallScope {
  // Root means the machine's builder: a root *user* unit would run only while root is logged in.
  if (facts.processUid === 0) return 'system';
  return facts.nixDaemonSocketExists || facts.nixRemote === 'daemon' ? 'system' : 'user';
}

// ssh first binds "<ControlPath>.<16 random characters>" and renames it, so that name must fit too.
const MUX_TEMP_SUFFIX = 17;

/**
 * The ssh ControlPath name inside `controlDir`, or null when no safe name fits the socket path
 * limit (then connection sharing is left off rather than making ssh fail with "ControlPath too
 * long"). `%u` keeps root's (nix-daemon's) and the user's sockets apart in a user install.
 */
export function chooseControlPathName(
  controlDir: string,
  platform: InstallPlatform,
  scope: InstallScope,
  users: { local: string[]; remote: string },
): string | null {
  const longestLocal = Math.max(...users.local.map((u) => u.length));
  const candidates: Array<{ name: string; length: number }> = [
    // %C is a 40-character hash of host, port and users; only root connects in a system install.
    scope === 'system' ? { name: '%C', length: 40 } : { name: '%u-%C', length: longestLocal + 1 + 40 },
    { name: '%u-%r-%p', length: longestLocal + 1 + users.remote.length + 1 + 5 },
  ];
  const budget = unixSocketPathLimit(platform) - MUX_TEMP_SUFFIX - Buffer.byteLength(`${controlDir}/`);
  return candidates.find((c) => c.length <= budget)?.name ?? null;
}
