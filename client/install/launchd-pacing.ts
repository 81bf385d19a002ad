// launchctl's asynchronous edges, handled: `bootout` returns before the job is gone (launchd
// sends SIGTERM and waits up to ExitTimeOut; our daemon powers the VM off first), and a
// `bootstrap` of the same label meanwhile fails with 5 (EIO) or 37 (EALREADY/"Operation already
// in progress"). So after bootout we poll `launchctl print` until the job is gone, bounded by
// ExitTimeOut plus a margin, and retry bootstrap on 5/37 a bounded number of times, saying so.
import type { CommandRunner } from './run-command.js';
import type { Argv } from './service-commands.js';

export interface Pacing {
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

export const realPacing: Pacing = {
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  now: () => Date.now(),
};

export interface PacedOptions {
  /** The job's ExitTimeOut in seconds: how long launchd may take to stop it. */
  exitTimeOutSec: number;
  pacing?: Pacing;
  /** Extra time past ExitTimeOut before we give up waiting for the job to go. */
  marginMs?: number;
  pollMs?: number;
  bootstrapAttempts?: number;
  retryDelayMs?: number;
}

export interface PacedResult {
  commands: Array<{ argv: Argv; code: number; output: string }>;
  notes: string[];
  /** The first command that failed for good, with why; null when all succeeded. */
  failure: string | null;
}

const RETRYABLE_BOOTSTRAP = new Set([5, 37]);
const output = (r: { stdout: string; stderr: string }) => (r.stderr || r.stdout).trim();

/** Runs service commands in order; launchctl bootout and bootstrap are paced as above. */
export async function runPaced(
  argvs: Argv[],
  runner: CommandRunner,
  opts: PacedOptions,
): Promise<PacedResult> {
  const pacing = opts.pacing ?? realPacing;
  const result: PacedResult = { commands: [], notes: [], failure: null };
  for (const argv of argvs) {
    const isLaunchctl = argv[0] === 'launchctl';
    if (isLaunchctl && argv[1] === 'bootstrap') {
      const attempts = opts.bootstrapAttempts ?? 10;
      let r = await runner(argv);
      let tries = 1;
      while (RETRYABLE_BOOTSTRAP.has(r.code) && tries < attempts) {
        await pacing.sleep(opts.retryDelayMs ?? 1000);
        r = await runner(argv);
        tries++;
      }
      result.commands.push({ argv, code: r.code, output: output(r) });
      if (tries > 1) {
        result.notes.push(
          `launchctl bootstrap ${r.code === 0 ? 'succeeded' : 'still failed'} after ${tries} attempts (launchd answered 5/37 while the old job was still going away)`,
        );
      }
      if (r.code !== 0) {
        result.failure = `${argv.join(' ')} failed (exit ${r.code}): ${output(r)}`;
        return result;
      }
      continue;
    }
    const r = await runner(argv);
    result.commands.push({ argv, code: r.code, output: output(r) });
    if (r.code !== 0) {
      result.failure = `${argv.join(' ')} failed (exit ${r.code}): ${output(r)}`;
      return result;
    }
    if (isLaunchctl && argv[1] === 'bootout') {
      const target = argv[2];
      const limitMs = opts.exitTimeOutSec * 1000 + (opts.marginMs ?? 10_000);
      const start = pacing.now();
      let gone = false;
      while (!gone) {
        gone = (await runner(['launchctl', 'print', target])).code !== 0;
        if (gone) break;
        if (pacing.now() - start >= limitMs) break;
        await pacing.sleep(opts.pollMs ?? 250);
      }
      const waited = ((pacing.now() - start) / 1000).toFixed(1);
      if (!gone) {
        result.failure = `launchd still has ${target} ${waited} s after bootout (its ExitTimeOut is ${opts.exitTimeOutSec} s); check it with: launchctl print ${target}`;
        return result;
      }
      if (pacing.now() > start)
        result.notes.push(`waited ${waited} s for launchd to remove ${target} after bootout`);
    }
  }
  return result;
}
