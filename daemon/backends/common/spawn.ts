// Starting a hypervisor process the way every backend must: in its own session (the VM outlives
// the daemon's process group, which launchd kills), its output appended to a log file in the
// state directory (a file, never a pipe, so a dead daemon cannot SIGPIPE its VM), and its early
// death reported with its own last words.
import { spawn, type ChildProcess } from 'node:child_process';
import { openChildLog, readTail } from './child-process.js';

export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** "exited with code 1", "was killed by SIGKILL", or "exited" when the status is unknown. */
export function describeEnd(e: ProcessEnd): string {
  if (e.signal !== null) return `was killed by ${e.signal}`;
  if (e.code === null) return 'exited';
  return `exited with code ${e.code}`;
}

export interface Spawned {
  child: ChildProcess;
  /** Settles with the exit, or with `error` when the executable could not be run. */
  exit: Promise<ProcessEnd & { error?: Error }>;
  /** What the process wrote to its log since it started. */
  tail(): Promise<string>;
}

/** Starts `executable` with stdout and stderr appended to `logPath`; `onError` hears errors of a running child. */
export async function spawnLogged(
  executable: string,
  argv: string[],
  logPath: string,
  onError: (e: Error) => void,
): Promise<Spawned> {
  const log = await openChildLog(logPath, 0o600);
  let child: ChildProcess;
  let offset: number;
  let exit: Spawned['exit'];
  try {
    await log.write(`--- ${new Date().toISOString()} ${executable} ${argv.join(' ')}\n`);
    offset = (await log.stat()).size;
    child = spawn(executable, argv, { detached: true, stdio: ['ignore', log.fd, log.fd] });
    // Listen before the next tick: a missing binary is reported as an 'error' event then.
    exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      // Kept for the child's life: an unheard 'error' (e.g. a failed kill) would crash the daemon.
      child.on('error', (error) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, error });
        else onError(error);
      });
    });
  } finally {
    await log.close();
  }
  return { child, exit, tail: () => readTail(logPath, offset) };
}

/**
 * Throws the reason a process ended while it was starting: its own last words when it had any,
 * led by the known cause `explain` finds in them.
 */
export async function earlyExit(
  name: string,
  executable: string,
  spawned: Spawned,
  when: string,
  explain: (output: string) => string | null = () => null,
): Promise<never> {
  const e = await spawned.exit;
  if (e.error) throw new Error(`cannot run ${name} ${JSON.stringify(executable)}: ${e.error.message}`);
  const output = (await spawned.tail()).trim();
  const said = output || '(no output)';
  const known = output ? explain(output) : null;
  throw new Error(`${name} ${describeEnd(e)} ${when}: ${known ? `${known} (stderr: ${said})` : said}`);
}

/** SIGKILL for a child that failed to start properly; resolves once it is reaped. */
export async function killSpawned(spawned: Spawned): Promise<void> {
  const { child } = spawned;
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await spawned.exit;
  }
}
