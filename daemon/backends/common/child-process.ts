// Helpers for the hypervisor processes every backend runs: their log file in the state
// directory, waiting on them with a bound, and signalling one that is not this daemon's child.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { isSameProcess, readProcessIdentity } from '../../process/identity.js';
import type { VmRecord } from '../../backend.js';

/** A child's log is started afresh once it grows past this. */
const CHILD_LOG_MAX_BYTES = 1 << 20;

/** Opens a child's log for appending, or afresh once it is past 1 MiB. */
export async function openChildLog(path: string, mode?: number): Promise<FileHandle> {
  const size = await stat(path).then(
    (s) => s.size,
    () => 0,
  );
  return open(path, size > CHILD_LOG_MAX_BYTES ? 'w' : 'a', mode);
}

/** What the log holds from `offset` on, at most its last `maxBytes`; '' when it cannot be read. */
export async function readTail(path: string, offset: number, maxBytes = 4096): Promise<string> {
  try {
    const text = await readFile(path);
    return text.subarray(Math.max(offset, text.length - maxBytes)).toString('utf8');
  } catch {
    return '';
  }
}

/** True if `p` settles within `ms`; the timer never outlives the answer. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Signals a process that is not our child, only while it is still the recorded one. */
export async function signalRecorded(
  record: Pick<VmRecord, 'pid' | 'executable' | 'argv' | 'processStartTime'>,
  signal: NodeJS.Signals,
): Promise<boolean> {
  if (!isSameProcess(record, await readProcessIdentity(record.pid))) return false;
  try {
    process.kill(record.pid, signal);
    return true;
  } catch {
    return false;
  }
}
