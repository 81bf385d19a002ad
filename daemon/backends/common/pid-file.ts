// Pid files in the state directory (QEMU's -pidfile, hyperkit's -F, the backend's vpnkit.pid).
import { readFile } from 'node:fs/promises';

/** The pid in the file; null when there is no file or it holds no positive integer. */
export async function readPidFile(path: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
