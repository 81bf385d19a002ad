// Runs a command and reports how it ended instead of throwing: callers decide what an exit
// code means (launchctl print exits 113 for "not loaded", systemctl is-active 3 for inactive).
import { execFile } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CommandRunner = (
  argv: string[],
  opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv },
) => Promise<CommandResult>;

/** 127 with the reason in stderr when the program is missing, as a shell would say. */
export const runCommand: CommandRunner = (argv, opts = {}) =>
  new Promise((resolve) => {
    const [file, ...args] = argv;
    execFile(
      file,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000,
        env: opts.env ?? process.env,
        maxBuffer: 8 << 20,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (e.code === 'ENOENT')
          return resolve({ code: 127, stdout: '', stderr: `${file}: command not found` });
        if (e.killed)
          return resolve({
            code: 124,
            stdout,
            stderr: `${stderr}${file}: timed out after ${opts.timeoutMs ?? 30_000} ms`,
          });
        resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr: stderr || e.message });
      },
    );
  });
