// One daemon per state directory. The lock is a file created with O_EXCL holding the owner's pid;
// a lock whose pid is gone (a daemon killed with SIGKILL, a power cut) is stale and taken over.
import { readFileSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../fs/atomic-write.js';

export class StateDirLockedError extends Error {
  override readonly name = 'StateDirLockedError';
}

export interface InstanceLock {
  path: string;
  release(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // After a reboot the pid may belong to something else: on Linux, check it is a linuxkitd.
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /linuxkitd|daemon\/main\.[jt]s/.test(cmdline);
  } catch {
    return process.platform !== 'linux';
  }
}

export async function acquireInstanceLock(path: string, stateDir: string): Promise<InstanceLock> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // Appears whole or not at all: a reader never sees an empty lock and takes it for stale.
      await writeFileAtomic(path, `${process.pid}\n`, { mode: 0o600, exclusive: true });
      return {
        path,
        async release() {
          // Only remove our own lock, never one a successor took over.
          const owner = await readFile(path, 'utf8').catch(() => '');
          if (Number(owner.trim()) === process.pid) await unlink(path).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const content = (await readFile(path, 'utf8').catch(() => '')).trim();
    const owner = Number(content);
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
      throw new StateDirLockedError(
        `another linuxkitd (pid ${owner}) is already running on state directory ${stateDir}; ` +
          `stop it first, or use another --state-dir`,
      );
    }
    // Stale: remove it only if it still holds what we read, then try again.
    const again = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (again === content) await unlink(path).catch(() => {});
  }
  throw new StateDirLockedError(
    `could not take the lock ${path}: it keeps changing; is another linuxkitd starting?`,
  );
}
