// The files a QEMU VM leaves in the state directory (pid file, QMP socket): whether a live VM
// still owns them, and removing them once it is gone. A live VM's files are never touched.
import { rm } from 'node:fs/promises';
import { mayBeListening, probeUnixSocket } from '../../fs/unix-socket-probe.js';
import { readProcessIdentity, type ProcessIdentity } from '../../process/identity.js';
import { LiveVmError } from '../common/live-vm.js';
import { readPidFile } from '../common/pid-file.js';
import type { QemuPaths } from './args.js';

/** Throws when a running QEMU owns the state directory's pid file or answers on its QMP socket. */
export async function assertNoLiveVm(paths: QemuPaths, stateDir: string): Promise<void> {
  const pid = await readPidFile(paths.pidFile);
  if (pid !== null) {
    const identity = await readProcessIdentity(pid);
    if (identity !== null && ownsPidFile(identity, paths.pidFile)) {
      throw new LiveVmError('QEMU', pid, stateDir);
    }
  }
  if (await socketAnswers(paths.qmpSocket)) {
    throw new Error(
      `a live VM answers on ${paths.qmpSocket} in the state directory ${stateDir}; adopt it or stop it first`,
    );
  }
}

/** QEMU was started with `-pidfile <pidFile>`: this process is the VM of that state directory. */
function ownsPidFile(identity: ProcessIdentity, pidFile: string): boolean {
  return ` ${identity.argv.join(' ')} `.includes(` -pidfile ${pidFile} `);
}

/** True when a process may hold the Unix socket (see mayBeListening). */
export async function socketAnswers(path: string): Promise<boolean> {
  return mayBeListening(await probeUnixSocket(path));
}

/**
 * After the VM is confirmed gone, removes what a killed QEMU leaves behind: its pid file and
 * QMP socket. Files of any other VM (another pid in the pid file, a socket that answers) stay.
 */
export async function removeStaleFiles(paths: QemuPaths, pid: number): Promise<void> {
  const owner = await readPidFile(paths.pidFile).catch(() => undefined);
  if (owner === pid) await rm(paths.pidFile, { force: true });
  else if (owner !== null || (await socketAnswers(paths.qmpSocket))) return;
  await rm(paths.qmpSocket, { force: true });
}
