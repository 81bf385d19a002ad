// Who a pid really is: a pid alone can be reused, so a recorded VM is matched by executable,
// argv and OS start time before anyone signals it or deletes its files.
import { execFile } from 'node:child_process';
import { readFile, readlink } from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface ProcessIdentity {
  /** Absolute path of the running executable. */
  executable: string;
  /** Linux: the exact argv. macOS: one element, the command line as `ps` prints it. */
  argv: string[];
  /** Linux: /proc/<pid>/stat field 22 (clock ticks since boot). macOS: `ps -o lstart`. */
  startTime: string;
}

export interface ProcStat {
  pid: number;
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
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const pid = Number(text.slice(0, open).trim());
  // Fields after comm start at field 3 (state); field n is rest[n - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/);
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

export interface PsIdentity {
  state: string;
  executable: string;
  startTime: string;
}

/**
 * Parses macOS `ps -o stat= -o lstart= -o comm= -p PID` output, e.g.
 * `Ss   Wed Nov 26 09:08:01 2025     /opt/homebrew/bin/qemu-system-aarch64`.
 * lstart is always five words; comm (the executable path) may contain spaces.
 */
export function parsePsStatLine(line: string): PsIdentity {
  const m = /^\s*(\S+)\s+(\S+\s+\S+\s+\d+\s+\d\d:\d\d:\d\d\s+\d{4})\s+(.+?)\s*$/.exec(line);
  if (!m) throw new Error(`unexpected ps output: ${JSON.stringify(line.slice(0, 120))}`);
  return { state: m[1], startTime: m[2].replace(/\s+/g, ' '), executable: m[3] };
}

export async function readProcessIdentity(pid: number): Promise<ProcessIdentity | null> {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`pid must be a positive integer, got ${pid}`);
  return process.platform === 'linux' ? readLinuxIdentity(pid) : readPsIdentity(pid);
}

async function readLinuxIdentity(pid: number): Promise<ProcessIdentity | null> {
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

async function readPsIdentity(pid: number): Promise<ProcessIdentity | null> {
  try {
    const [status, command] = await Promise.all([
      execFileAsync('ps', ['-o', 'stat=', '-o', 'lstart=', '-o', 'comm=', '-p', String(pid)]),
      execFileAsync('ps', ['-ww', '-o', 'command=', '-p', String(pid)]),
    ]);
    if (status.stdout.trim() === '') return null;
    const parsed = parsePsStatLine(status.stdout.trim());
    if (parsed.state.startsWith('Z')) return null;
    return { executable: parsed.executable, argv: [command.stdout.trim()], startTime: parsed.startTime };
  } catch (err) {
    // ps exits 1 when no process has that pid.
    if ((err as { code?: unknown }).code === 1) return null;
    throw err;
  }
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH';
}

/** Linux marks the executable of a process whose binary was replaced (e.g. upgraded) this way. */
function stripDeleted(path: string): string {
  return path.endsWith(' (deleted)') ? path.slice(0, -' (deleted)'.length) : path;
}

/**
 * True when `identity` is the process `record` describes. argv is compared as one
 * space-joined string because macOS `ps` cannot give the argument boundaries.
 */
export function isSameProcess(
  record: { executable: string; argv: string[]; processStartTime: string },
  identity: ProcessIdentity | null,
): boolean {
  if (identity === null) return false;
  if (identity.startTime !== record.processStartTime) return false;
  if (record.argv.join(' ') !== identity.argv.join(' ')) return false;
  // An unreadable link (another user's process) leaves argv and start time to decide.
  if (identity.executable === '') return true;
  return stripDeleted(identity.executable) === stripDeleted(record.executable);
}
