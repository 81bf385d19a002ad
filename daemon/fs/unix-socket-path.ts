// The one Unix socket path limit: every socket we bind or have bound (the API socket, QMP,
// vpnkit's and hyperkit's sockets, ssh's ControlPath) must fit it.

/**
 * The longest path bind(2) and connect(2) take, in bytes: sizeof(sockaddr_un.sun_path) less its
 * terminating NUL (108 - 1 on Linux, 104 - 1 on macOS and the BSDs).
 */
export function unixSocketPathLimit(platform: NodeJS.Platform): number {
  return platform === 'linux' ? 107 : 103;
}
