// Where linuxkitctl looks for the daemon's socket when neither --socket nor LINUXKIT_SOCKET says.
// It mirrors the daemon's default state directory (daemon/config/paths.ts, defaultStateDir);
// a test compares the two, since the client may not import daemon code at run time.

const APP_DIR_NAME = 'linuxkit-nix';
const SOCKET_NAME = 'daemon.sock';

/** Moves the daemon's whole state directory (the daemon reads it too). */
export const STATE_DIR_ENV = 'LINUXKIT_NIX_STATE_DIR';

export function defaultSocketPath(
  platform: NodeJS.Platform,
  uid: number,
  home: string,
  env: { XDG_STATE_HOME?: string } = {},
): string {
  // root runs the system daemon, on Linux and macOS alike.
  if (uid === 0) return `/var/lib/${APP_DIR_NAME}/${SOCKET_NAME}`;
  // A macOS user's own LaunchAgent keeps its data in Application Support.
  if (platform === 'darwin') return `${home}/Library/Application Support/${APP_DIR_NAME}/${SOCKET_NAME}`;
  // Other users (systemd --user): the XDG state directory; a relative XDG value is invalid.
  const xdg = env.XDG_STATE_HOME;
  const base = xdg?.startsWith('/') ? xdg.replace(/\/+$/, '') : `${home}/.local/state`;
  return `${base}/${APP_DIR_NAME}/${SOCKET_NAME}`;
}

/** --socket wins, then LINUXKIT_SOCKET, then the socket in $LINUXKIT_NIX_STATE_DIR, then the default. */
export function resolveSocketPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  fallback: () => string,
): string {
  if (flag) return flag;
  if (env.LINUXKIT_SOCKET) return env.LINUXKIT_SOCKET;
  const stateDir = env[STATE_DIR_ENV];
  if (stateDir) return `${stateDir.replace(/\/+$/, '')}/${SOCKET_NAME}`;
  return fallback();
}
