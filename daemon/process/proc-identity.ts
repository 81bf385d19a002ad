// The Linux reader of a process's identity: /proc/<pid>/{stat,cmdline,exe}. Exact argv, the
// kernel's start time in clock ticks, the resolved executable path.
import { readFile, readlink } from 'node:fs/promises';
import type { ProcessIdentity } from './identity.js';

export interface ProcStat {
  pid: number;
  /** The kernel's task name: the executable's base name as exec'd, cut to 15 bytes. */
  comm: string;
  /** One letter: R, S, D, Z, T, X, ... */
  state: string;
  /** Field 22, starttime, kept as a string: it can exceed 2^53 in principle and is only compared. */
  startTime: string;
}

/** Parses /proc/<pid>/stat. The comm field may hold spaces and ')', so it ends at the last ')'. */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open)
    throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const pid = Number(text.slice(0, open).trim());
  // Fields after comm start at field 3 (state); field n is rest[n - 3].
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const state = rest[0];
  const startTime = rest[22 - 3];
  if (!Number.isInteger(pid) || !state || startTime === undefined || !/^\d+$/.test(startTime)) {
    throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { pid, comm: text.slice(open + 1, close), state, startTime };
}

/** Parses /proc/<pid>/cmdline: NUL-terminated arguments; empty arguments are kept. */
export function parseProcCmdline(data: Buffer | string): string[] {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  if (text === '') return [];
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export async function readProcIdentity(pid: number): Promise<ProcessIdentity | null> {
  const dir = `/proc/${pid}`;
  let stat: ProcStat;
  let cmdline: Buffer;
  try {
    stat = parseProcStat(await readFile(`${dir}/stat`, 'utf8'));
    cmdline = await readFile(`${dir}/cmdline`);
  } catch (err) {
    if (isGone(err)) return null;
    throw err;
  }
  // kill -0 succeeds on a zombie, but a zombie is a VM that has already ended.
  if (stat.state === 'Z' || stat.state === 'X') return null;
  let executable: string;
  try {
    executable = await readlink(`${dir}/exe`);
  } catch (err) {
    if (isGone(err)) return null;
    // Another user's process: the link is unreadable but the process is real.
    if ((err as NodeJS.ErrnoException).code === 'EACCES') executable = '';
    else throw err;
  }
  return { executable, argv: parseProcCmdline(cmdline), startTime: stat.startTime };
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH';
}
