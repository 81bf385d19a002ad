// Stopping a linuxkitd that no service manager runs (started by hand after install --no-service,
// as scripts/up.sh does in a container, or under --root), so uninstall can go on: a running
// daemon would put back the registration as uninstall removes it (drift repair). The API has no
// "exit" call, so: ask the daemon who it is (GET /v1/status), make sure that pid is the
// linuxkitd of this state directory (its lock file, its command line), stop its VM through the
// API when the daemon would leave it running on SIGTERM, then SIGTERM it and wait for it to go.
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ApiError, DaemonUnreachableError, LinuxkitClient } from '../api-client.js';
import { STATE_LAYOUT } from '../../daemon/config/paths.js';
import { readProcessIdentity, type ProcessIdentity } from '../../daemon/process/identity.js';

export class UnmanagedDaemonError extends Error {
  override readonly name = 'UnmanagedDaemonError';
}

/** What says which process to signal. */
export interface DaemonClaims {
  socketPath: string;
  stateDir: string;
  /** status.daemon.pid from the daemon on the socket. */
  reportedPid: number;
  /** The state directory's daemon.lock, as read (null: missing or unreadable). */
  lockText: string | null;
  /** The reported pid's process, as the OS describes it (null: gone). */
  identity: ProcessIdentity | null;
}

const LINUXKITD = /(^|[\s/])linuxkitd(\s|$)|daemon\/main\.[jt]s(\s|$)/;

/** The pid to SIGTERM, or why none may be: pure, so each refusal is a table row. */
export function daemonToSignal(c: DaemonClaims): { ok: true; pid: number } | { ok: false; reason: string } {
  const lock = path.join(c.stateDir, STATE_LAYOUT.lock);
  if (!Number.isInteger(c.reportedPid) || c.reportedPid <= 1)
    return {
      ok: false,
      reason: `the daemon on ${c.socketPath} reports pid ${c.reportedPid}, which is not a process to signal`,
    };
  if (c.lockText === null)
    return {
      ok: false,
      reason: `${lock} is missing, so the daemon on ${c.socketPath} (pid ${c.reportedPid}) cannot be shown to be this install's`,
    };
  const lockPid = Number(c.lockText.trim());
  if (lockPid !== c.reportedPid) {
    return {
      ok: false,
      reason: `the daemon on ${c.socketPath} reports pid ${c.reportedPid}, but ${lock} names ${c.lockText.trim() || 'nobody'}: it is not the linuxkitd of ${c.stateDir}`,
    };
  }
  if (c.identity === null)
    return { ok: false, reason: `pid ${c.reportedPid} is gone, or its command line cannot be read` };
  const commandLine = c.identity.argv.join(' ');
  if (!LINUXKITD.test(commandLine))
    return { ok: false, reason: `pid ${c.reportedPid} runs "${commandLine.slice(0, 120)}", not linuxkitd` };
  return { ok: true, pid: c.reportedPid };
}

interface StopSettings {
  onSigterm: 'stop' | 'leave';
  stopGraceMs: number;
}

/** The two settings that decide how the daemon stops; the daemon's defaults when unreadable. */
async function stopSettings(configPath: string): Promise<StopSettings> {
  try {
    const raw = JSON.parse(await readFile(configPath, 'utf8')) as Partial<StopSettings>;
    return {
      onSigterm: raw.onSigterm === 'leave' ? 'leave' : 'stop',
      stopGraceMs: typeof raw.stopGraceMs === 'number' && raw.stopGraceMs >= 0 ? raw.stopGraceMs : 20_000,
    };
  } catch {
    return { onSigterm: 'stop', stopGraceMs: 20_000 };
  }
}

/** Exited (ESRCH), or a zombie nobody reaped yet (Linux: state Z in /proc/<pid>/stat). */
async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return / Z /.test(stat.slice(stat.lastIndexOf(')')));
}

async function until(what: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await what()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface UnmanagedDaemon {
  socketPath: string;
  stateDir: string;
  configPath: string;
}

/** Stops the daemon on the install's socket; resolves with a note saying what was done. */
export async function stopUnmanagedDaemon(d: UnmanagedDaemon): Promise<string> {
  const client = new LinuxkitClient({ socketPath: d.socketPath, timeoutMs: 10_000 });
  let status: Awaited<ReturnType<LinuxkitClient['status']>>;
  try {
    status = await client.status();
  } catch (err) {
    if (err instanceof DaemonUnreachableError || err instanceof ApiError) {
      throw new UnmanagedDaemonError(
        `something listens on ${d.socketPath} but does not answer as linuxkitd (${err.message})`,
      );
    }
    throw err;
  }
  const lockText = await readFile(path.join(d.stateDir, STATE_LAYOUT.lock), 'utf8').catch(() => null);
  const identity = await readProcessIdentity(status.daemon.pid).catch(() => null);
  const target = daemonToSignal({
    socketPath: d.socketPath,
    stateDir: d.stateDir,
    reportedPid: status.daemon.pid,
    lockText,
    identity,
  });
  if (!target.ok) throw new UnmanagedDaemonError(target.reason);
  const pid = target.pid;

  const settings = await stopSettings(d.configPath);
  // The VM's ACPI grace, then the daemon's own hard-stop steps (as the service's stop timeout).
  const stopTimeoutMs = settings.stopGraceMs + 15_000;
  let vmNote = '';
  if (settings.onSigterm === 'leave' && status.vm.pid !== null) {
    // On SIGTERM this daemon would leave the VM running for a successor that never comes.
    await client.stop();
    const vmGone = await until(async () => (await client.status()).vm.pid === null, stopTimeoutMs);
    if (!vmGone)
      throw new UnmanagedDaemonError(
        `asked linuxkitd (pid ${pid}) to stop its VM (pid ${status.vm.pid}), and it still runs after ${stopTimeoutMs} ms`,
      );
    vmNote = `, after stopping its VM (pid ${status.vm.pid}) through the API, since onSigterm is "leave"`;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM')
      throw new UnmanagedDaemonError(
        `may not signal linuxkitd (pid ${pid}): run uninstall as the user it runs as (sudo for a system install)`,
      );
    if (code !== 'ESRCH') throw err;
  }
  if (!(await until(() => processGone(pid), stopTimeoutMs))) {
    throw new UnmanagedDaemonError(
      `sent SIGTERM to linuxkitd (pid ${pid}), and it still runs after ${stopTimeoutMs} ms; its log is ${path.join(d.stateDir, STATE_LAYOUT.daemonLog)}`,
    );
  }
  return `linuxkitd (pid ${pid}) ran without a service manager: stopped it with SIGTERM${vmNote}`;
}
