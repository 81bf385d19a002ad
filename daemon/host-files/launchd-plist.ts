// The launchd job for linuxkitd, as a LaunchDaemon (--system) or a LaunchAgent (--user).
// Unlike the original linuxkit-nix's job (Label, Program, RunAtLoad, ExitTimeOut only), it
// restarts the daemon when it dies and keeps what the daemon printed before its log was open.
import { build, parse } from 'plist';
import type { DaemonServiceSpec } from './daemon-service.js';

export interface LaunchdJob {
  Label: string;
  ProgramArguments: string[];
  RunAtLoad: boolean;
  KeepAlive: boolean;
  StandardOutPath: string;
  StandardErrorPath: string;
  ThrottleInterval: number;
  ExitTimeOut: number;
  EnvironmentVariables: Record<string, string>;
  ProcessType: 'Standard';
}

/** Every key the job has, in the order the plist lists them. */
export const LAUNCHD_JOB_KEYS = [
  'Label',
  'ProgramArguments',
  'RunAtLoad',
  'KeepAlive',
  'StandardOutPath',
  'StandardErrorPath',
  'ThrottleInterval',
  'ExitTimeOut',
  'EnvironmentVariables',
  'ProcessType',
] as const satisfies ReadonlyArray<keyof LaunchdJob>;

export function launchdJob(label: string, spec: DaemonServiceSpec): LaunchdJob {
  if (!/^[A-Za-z0-9._-]+$/.test(label))
    throw new Error(`launchd label must be letters, digits, '.', '_' or '-'; got ${JSON.stringify(label)}`);
  for (const arg of spec.programArguments) {
    if (arg.includes('\0')) throw new Error(`program argument ${JSON.stringify(arg)} contains a NUL byte`);
  }
  return {
    Label: label,
    ProgramArguments: [...spec.programArguments],
    RunAtLoad: true,
    // The daemon never exits on purpose while it is installed; any exit is a crash to restart.
    KeepAlive: true,
    StandardOutPath: spec.stdoutPath,
    StandardErrorPath: spec.stderrPath,
    ThrottleInterval: spec.restartDelaySec,
    // SIGTERM makes the daemon power the VM off through ACPI first; SIGKILL must wait for that.
    ExitTimeOut: spec.stopTimeoutSec,
    EnvironmentVariables: { ...spec.environment },
    // As nix-daemon's own job: builds run at normal priority, not throttled like Background.
    ProcessType: 'Standard',
  };
}

/** The job as an XML plist (tab-indented like Apple's own, with a final newline). */
export function renderLaunchdPlist(job: LaunchdJob): string {
  const ordered = Object.fromEntries(LAUNCHD_JOB_KEYS.map((k) => [k, job[k]]));
  const xml = build(ordered, { indent: '\t' });
  return xml.endsWith('\n') ? xml : `${xml}\n`;
}

/** Parses a plist we wrote back into a job; an unexpected shape is an error naming the file. */
export function parseLaunchdPlist(xml: string, source = 'plist'): LaunchdJob {
  const value = parse(xml);
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Date ||
    value instanceof Uint8Array
  ) {
    throw new Error(`${source} is not a launchd job: its top level is not a dictionary`);
  }
  const missing = LAUNCHD_JOB_KEYS.filter((k) => !(k in value));
  if (missing.length)
    throw new Error(`${source} is not a linuxkit-nix launchd job: missing ${missing.join(', ')}`);
  return value as unknown as LaunchdJob;
}
