// The `ps` reader of a process's identity, for hosts without /proc (macOS). Its fields (stat,
// lstart, comm, command) are the same in Apple's ps and in procps, so it also runs on Linux.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ProcessIdentity } from './identity.js';

const execFileAsync = promisify(execFile);

/**
 * Apple's ps formats lstart with strftime("%c", localtime()) after setlocale(LC_ALL, ""): the
 * same process would read differently after the Mac changes time zone, and a non-C locale
 * gives words the parser does not know. Pinned, the start time is one fixed C-locale UTC string.
 */
const PS_ENV_PINS = { TZ: 'UTC0', LC_ALL: 'C' } as const;

export interface PsIdentity {
  state: string;
  /** ps's comm: argv[0] as exec'd on macOS (a bare name when found on PATH), the 15-byte task name on Linux. */
  executable: string;
  /** The lstart instant, ISO 8601 UTC to the second. */
  startTime: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/**
 * Parses `ps -o stat= -o lstart= -o comm= -p PID` run with PS_ENV_PINS, e.g.
 * `Ss   Wed Nov 26 09:08:01 2025     /opt/homebrew/bin/qemu-system-aarch64`.
 * lstart is the C locale's %c ("%a %b %e %H:%M:%S %Y") in UTC; comm may contain spaces.
 */
export function parsePsStatLine(line: string): PsIdentity {
  const m =
    /^\s*(\S+)\s+([A-Z][a-z]{2}) +([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})\s+(.+?)\s*$/.exec(
      line,
    );
  const month = m ? MONTHS.indexOf(m[3]) : -1;
  if (!m || month < 0 || !DAYS.includes(m[2])) {
    throw new Error(
      `unexpected ps output: ${JSON.stringify(line.slice(0, 120))}; ` +
        'expected "STAT Www Mmm d hh:mm:ss yyyy COMM" (ps run with TZ=UTC0 LC_ALL=C)',
    );
  }
  const [year, day, hh, mm, ss] = [m[8], m[4], m[5], m[6], m[7]].map(Number);
  const startTime = new Date(Date.UTC(year, month, day, hh, mm, ss)).toISOString().replace('.000Z', 'Z');
  return { state: m[1], startTime, executable: m[9] };
}

export interface PsReaderOptions {
  /** The ps binary; Apple's own on macOS (never a ps found first on PATH), `ps` elsewhere. */
  ps?: string;
}

const defaultPs = () => (process.platform === 'darwin' ? '/bin/ps' : 'ps');

export async function readPsIdentity(
  pid: number,
  opts: PsReaderOptions = {},
): Promise<ProcessIdentity | null> {
  const ps = opts.ps ?? defaultPs();
  const env = { ...process.env, ...PS_ENV_PINS };
  try {
    const [status, command] = await Promise.all([
      execFileAsync(ps, ['-o', 'stat=', '-o', 'lstart=', '-o', 'comm=', '-p', String(pid)], { env }),
      execFileAsync(ps, ['-ww', '-o', 'command=', '-p', String(pid)], { env }),
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
