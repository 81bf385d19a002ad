// Whether a TCP port on 127.0.0.1 is free, and when it is not, which processes listen on it:
// on Linux from /proc/net/tcp{,6} and the socket links in /proc/<pid>/fd, on macOS from lsof.
// The parsers are pure; the gatherers report what they could not see instead of throwing.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { CommandRunner } from './run-command.js';

export interface PortHolder {
  /** null: a listening socket whose process this user may not see (another user's). */
  pid: number | null;
  /** The process's command line (Linux) or command name (lsof); null when unknown. */
  command: string | null;
  /** The socket's owner, when known. */
  uid: number | null;
}

export type PortBind = { free: true } | { free: false; code: string };

export interface PortHolders {
  holders: PortHolder[];
  /** Why the list may be incomplete or empty (no permission, lsof missing); null when complete. */
  gap: string | null;
}

/**
 * Tries to listen on 127.0.0.1:port, then on 0.0.0.0:port, letting go at once. Both: on macOS
 * (BSD sockets with SO_REUSEADDR, which Node sets) a listener on the wildcard address does not
 * stop a bind to 127.0.0.1 or the other way round, yet the two would split the connections.
 */
export async function tryBind(port: number): Promise<PortBind> {
  for (const host of ['127.0.0.1', '0.0.0.0']) {
    const result = await tryBindOn(port, host);
    if (!result.free) return result;
  }
  return { free: true };
}

function tryBindOn(port: number, host: string): Promise<PortBind> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      resolve({ free: false, code: err.code ?? err.message }),
    );
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve({ free: true })));
  });
}

/** LISTEN sockets on `port` in a /proc/net/tcp or tcp6 table: their inodes and owners. */
export function parseProcNetTcp(text: string, port: number): Array<{ inode: number; uid: number }> {
  const out: Array<{ inode: number; uid: number }> = [];
  for (const line of text.split('\n').slice(1)) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const localPort = parseInt(f[1].split(':').pop() ?? '', 16);
    if (localPort !== port || f[3] !== '0A') continue;
    out.push({ uid: Number(f[7]), inode: Number(f[9]) });
  }
  return out;
}

/** `lsof -F pcu` output: one holder per process set (p, then c and u lines); file lines ignored. */
export function parseLsofFields(output: string): PortHolder[] {
  const byPid = new Map<number, PortHolder>();
  let current: PortHolder | null = null;
  for (const line of output.split('\n')) {
    const field = line[0];
    const value = line.slice(1);
    if (field === 'p') {
      const pid = Number(value);
      current = byPid.get(pid) ?? { pid, command: null, uid: null };
      byPid.set(pid, current);
    } else if (current && field === 'c') current.command = value;
    else if (current && field === 'u') current.uid = Number(value);
  }
  return [...byPid.values()];
}

/** A holder as people read it: "pid 123 (qemu-system-x86_64 -m 2048 ...)". */
export function describeHolder(h: PortHolder): string {
  if (h.pid === null) return `a process of uid ${h.uid ?? '?'} that this user may not see`;
  const command =
    h.command === null ? '' : ` (${h.command.length > 120 ? `${h.command.slice(0, 117)}...` : h.command})`;
  return `pid ${h.pid}${command}`;
}

async function procCommand(pid: number): Promise<string | null> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const words = raw.split('\0').filter((w) => w !== '');
  return words.length > 0 ? words.join(' ') : null;
}

async function linuxHolders(port: number): Promise<PortHolders> {
  const sockets: Array<{ inode: number; uid: number }> = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    sockets.push(...parseProcNetTcp(text, port));
  }
  if (sockets.length === 0)
    return {
      holders: [],
      gap: `no listening socket on port ${port} in /proc/net/tcp (another network namespace?)`,
    };
  const wanted = new Map(sockets.map((s) => [`socket:[${s.inode}]`, s]));
  const found = new Map<number, number>(); // pid -> uid of the socket
  const seenInodes = new Set<string>();
  let unreadable = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${entry}/fd`);
    } catch {
      unreadable++;
      continue;
    }
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      const socket = wanted.get(target);
      if (!socket) continue;
      found.set(Number(entry), socket.uid);
      seenInodes.add(target);
    }
  }
  const holders: PortHolder[] = [];
  for (const [pid, uid] of found) holders.push({ pid, command: await procCommand(pid), uid });
  for (const [link, s] of wanted)
    if (!seenInodes.has(link)) holders.push({ pid: null, command: null, uid: s.uid });
  const hidden = holders.some((h) => h.pid === null);
  return {
    holders,
    gap: hidden
      ? `${unreadable} processes' open files are not readable by this user: run as root to name them`
      : null,
  };
}

async function lsofHolders(port: number, runner: CommandRunner): Promise<PortHolders> {
  const argv = ['lsof', '-nP', `-iTCP:${port}`, '-sTCP:LISTEN', '-Fpcu'];
  const r = await runner(argv, { timeoutMs: 10_000 });
  const holders = parseLsofFields(r.stdout);
  if (holders.length > 0) return { holders, gap: null };
  if (r.code === 127) return { holders, gap: 'lsof is not installed, so the holder cannot be named' };
  // lsof lists only the processes this user may see.
  return {
    holders,
    gap: `${argv.join(' ')} names no process (it shows only this user's processes unless run as root)`,
  };
}

/** Who listens on `port`: /proc on Linux, lsof on macOS. */
export function findPortHolders(
  port: number,
  platform: 'darwin' | 'linux',
  runner: CommandRunner,
): Promise<PortHolders> {
  return platform === 'linux' ? linuxHolders(port) : lsofHolders(port, runner);
}
