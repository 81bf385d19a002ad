// Who a pid really is: a pid alone can be reused, so a recorded VM is matched by executable,
// argv and OS start time before anyone signals it or deletes its files.
import { readProcIdentity } from './proc-identity.js';
import { readPsIdentity } from './ps-identity.js';

export interface ProcessIdentity {
  /**
   * Linux (/proc): the resolved path of the running executable. ps (macOS): `comm`, which is
   * argv[0] as the process was exec'd — a bare name when it was found on PATH, not a resolved
   * path; procps gives the kernel's 15-byte task name there instead.
   */
  executable: string;
  /** /proc: the exact argv. ps: one element, the command line as `ps -o command` prints it. */
  argv: string[];
  /** /proc: stat field 22 (clock ticks since boot). ps: lstart as an ISO 8601 UTC instant. */
  startTime: string;
}

export type ProcessIdentityReader = (pid: number) => Promise<ProcessIdentity | null>;
export type IdentitySource = 'proc' | 'ps';

/**
 * /proc on Linux, ps everywhere else. `LINUXKIT_PROCESS_IDENTITY=ps` selects the macOS reader
 * on Linux (procps accepts the same fields), so the whole daemon can run the Mac's adoption path.
 */
export function identitySource(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): IdentitySource {
  const chosen = env.LINUXKIT_PROCESS_IDENTITY;
  if (chosen === 'ps' || chosen === 'proc') return chosen;
  if (chosen !== undefined && chosen !== '') {
    throw new Error(`LINUXKIT_PROCESS_IDENTITY must be "ps" or "proc", got ${JSON.stringify(chosen)}`);
  }
  return platform === 'linux' ? 'proc' : 'ps';
}

export async function readProcessIdentity(pid: number): Promise<ProcessIdentity | null> {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`pid must be a positive integer, got ${pid}`);
  return identitySource(process.platform, process.env) === 'proc'
    ? readProcIdentity(pid)
    : readPsIdentity(pid);
}

/** Linux marks the executable of a process whose binary was replaced (e.g. upgraded) this way. */
function stripDeleted(path: string): string {
  return path.endsWith(' (deleted)') ? path.slice(0, -' (deleted)'.length) : path;
}

/**
 * True when `identity` is the process `record` describes. argv is compared as one
 * space-joined string because `ps` cannot give the argument boundaries.
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
