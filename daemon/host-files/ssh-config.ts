// The SSH side of the registration: a Host entry for the builder's alias (Nix cannot take a port in
// the builder URI) and a known-hosts line pinning the builder's host key under that alias.

export interface SshHostEntry {
  alias: string;
  port: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  /** Directory for connection-sharing sockets; omitted means no ControlMaster. */
  controlDir?: string;
  /** Socket name inside controlDir, with ssh's % tokens; default %C. */
  controlPathName?: string;
  controlPersist?: string;
  /**
   * ssh's ConnectTimeout (seconds), which covers the banner exchange too; default 10. On demand the
   * banner comes only once the VM has booted, so it must outlast the boot.
   */
  connectTimeoutSec?: number;
}

// IdentityFile, UserKnownHostsFile and ControlPath expand % tokens: a literal % is written %%.
function quote(path: string, tokens = ''): string {
  if (/["\n]/.test(path))
    throw new Error(`path ${JSON.stringify(path)} cannot be written to an ssh_config file`);
  const text = path.replace(/%/g, '%%') + tokens;
  return /\s/.test(text) ? `"${text}"` : text;
}

export function renderSshHostEntry(e: SshHostEntry): string {
  if (!/^[A-Za-z0-9._-]+$/.test(e.alias))
    throw new Error(`ssh alias must be letters, digits, '.', '_' or '-'; got ${JSON.stringify(e.alias)}`);
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)
    throw new Error(`ssh port must be 1..65535; got ${e.port}`);
  const lines = [
    `Host ${e.alias}`,
    '  HostName 127.0.0.1',
    `  Port ${e.port}`,
    `  User ${e.user}`,
    `  IdentityFile ${quote(e.identityFile)}`,
    '  IdentitiesOnly yes',
    `  HostKeyAlias ${e.alias}`,
    '  StrictHostKeyChecking yes',
    `  UserKnownHostsFile ${quote(e.knownHostsFile)}`,
    `  ConnectTimeout ${e.connectTimeoutSec ?? 10}`,
    '  ServerAliveInterval 15',
  ];
  if (e.controlDir) {
    lines.push(
      '  ControlMaster auto',
      `  ControlPath ${quote(`${e.controlDir}/`, e.controlPathName ?? '%C')}`,
      `  ControlPersist ${e.controlPersist ?? '60s'}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** A known_hosts line for the alias (HostKeyAlias makes ssh look the key up under it). */
export function renderKnownHostsLine(alias: string, hostPublicKeyLine: string): string {
  const [type, key] = hostPublicKeyLine.trim().split(/\s+/);
  if (!type || !key)
    throw new Error(`not an OpenSSH public key line: ${JSON.stringify(hostPublicKeyLine.slice(0, 60))}`);
  return `${alias} ${type} ${key}\n`;
}
