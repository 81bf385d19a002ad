// Runs the real linuxkitd (compiled, as launchd/systemd would) on a private state directory, and
// talks to it through the real client library and CLI.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LinuxkitClient } from '../../client/api-client.js';
import type { DaemonStatus } from '../../daemon/controller.js';
import { freePort, imageCacheDir, repoRoot, tempDir } from './env.js';

export const daemonMain = join(repoRoot, 'dist', 'daemon', 'main.js');
export const ctlMain = join(repoRoot, 'dist', 'client', 'main.js');

export function requireBuild(): void {
  if (!existsSync(daemonMain) || !existsSync(ctlMain)) {
    throw new Error(`${daemonMain} is missing: build first (npx tsc -p tsconfig.json, as npm test does)`);
  }
}

export interface DaemonUnderTest {
  stateDir: string;
  socket: string;
  sshPort: number;
  proc: ChildProcess;
  client: LinuxkitClient;
  /** Resolves with the daemon's exit code/signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Polls GET /v1/status until `pred` holds. */
  waitFor(pred: (s: DaemonStatus) => boolean, timeoutMs: number, what: string): Promise<DaemonStatus>;
  /** Runs linuxkitctl against this daemon. */
  ctl(args: string[]): { code: number | null; stdout: string; stderr: string };
}

export interface DaemonOptions {
  stateDir?: string;
  sshPort?: number;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** The --accel flag; null leaves it to the config (auto by default). Default tcg. */
  accel?: string | null;
  /** How long to wait for the API to answer; a loaded machine may need more than the default 30 s. */
  readyTimeoutMs?: number;
}

/** Starts linuxkitd with tcg (KVM guests hang on these machines). */
export async function startTestDaemon(opts: DaemonOptions = {}): Promise<DaemonUnderTest> {
  requireBuild();
  const stateDir = opts.stateDir ?? (await tempDir('d'));
  const sshPort = opts.sshPort ?? (await freePort());
  const socket = join(stateDir, 'daemon.sock');
  const proc = spawn(
    process.execPath,
    [
      daemonMain,
      '--state-dir',
      stateDir,
      ...(opts.accel === null ? [] : ['--accel', opts.accel ?? 'tcg']),
      '--ssh-port',
      String(sshPort),
      ...(opts.args ?? []),
    ],
    {
      env: { ...process.env, LINUXKIT_IMAGE_CACHE: imageCacheDir, ...opts.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const client = new LinuxkitClient({ socketPath: socket, timeoutMs: 10_000 });
  const waitFor = async (pred: (s: DaemonStatus) => boolean, timeoutMs: number, what: string) => {
    const deadline = Date.now() + timeoutMs;
    let last: DaemonStatus | Error | null = null;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        if (!existsSync(socket)) throw new Error(`linuxkitd exited while waiting for ${what}: ${stderr}`);
      }
      try {
        last = (await client.status()) as DaemonStatus;
        if (pred(last)) return last;
      } catch (err) {
        last = err as Error;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
    );
  };
  const ctl = (args: string[]) => {
    const r = spawnSync(process.execPath, [ctlMain, '--socket', socket, ...args], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  // Ready to test once the API answers (the first boot goes on in the background). A deadline,
  // not a speed check: on a loaded 2-core machine the daemon took minutes to answer its first request.
  try {
    await waitFor(() => true, opts.readyTimeoutMs ?? 600_000, 'the API socket to answer');
  } catch (err) {
    // Not left running behind the failed test, where a later step might talk to it unknowingly.
    proc.kill('SIGKILL');
    throw err;
  }
  return { stateDir, socket, sshPort, proc, client, exited, waitFor, ctl };
}

export const isHealthy = (s: DaemonStatus) => s.state === 'running' && s.healthy;
