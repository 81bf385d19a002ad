// The files hyperkit and vpnkit leave in the state directory: which live process owns them,
// and removing them once it is gone. hyperkit opens its pid file with O_CREAT|O_EXCL, so a pid
// file left by a SIGKILL or a crash would block every later start; but the pid in it may be
// alive, or reused by an unrelated process. A file is removed only after its owner is known gone.
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../../fs/atomic-write.js';
import { readProcessIdentity, type ProcessIdentity } from '../../process/identity.js';
import { readPidFile } from '../common/pid-file.js';
import type { HyperkitPaths } from './args.js';

export interface LiveProcess {
  pid: number;
  identity: ProcessIdentity;
}

/** A process started with `-F <pidFile>` is the hyperkit of this state directory. */
export function ownsHyperkitPidFile(identity: ProcessIdentity, pidFile: string): boolean {
  return ` ${identity.argv.join(' ')} `.includes(` -F ${pidFile} `);
}

/** A process started with `--ethernet <ethSocket>` is the vpnkit of this state directory. */
export function ownsVpnkitSockets(identity: ProcessIdentity, ethSocket: string): boolean {
  return ` ${identity.argv.join(' ')} `.includes(` --ethernet ${ethSocket} `);
}

/** The running hyperkit named by the pid file, or null when the pid is dead or someone else. */
export async function liveHyperkit(paths: HyperkitPaths): Promise<LiveProcess | null> {
  return liveOwner(paths.pidFile, (id) => ownsHyperkitPidFile(id, paths.pidFile));
}

/** The running vpnkit named by vpnkit.pid, or null. */
export async function liveVpnkit(paths: HyperkitPaths): Promise<LiveProcess | null> {
  return liveOwner(paths.vpnkitPidFile, (id) => ownsVpnkitSockets(id, paths.ethSocket));
}

async function liveOwner(
  pidFile: string,
  owns: (id: ProcessIdentity) => boolean,
): Promise<LiveProcess | null> {
  const pid = await readPidFile(pidFile).catch(() => null);
  if (pid === null) return null;
  const identity = await readProcessIdentity(pid);
  return identity !== null && owns(identity) ? { pid, identity } : null;
}

/** Removes hyperkit's leftovers; only call once no live hyperkit owns the state directory. */
export async function removeHyperkitLeftovers(paths: HyperkitPaths): Promise<void> {
  await rm(paths.pidFile, { force: true });
  await rm(paths.connectSocket, { force: true });
}

/** Removes vpnkit's leftovers; only call once no live vpnkit owns them. */
export async function removeVpnkitLeftovers(paths: HyperkitPaths): Promise<void> {
  await rm(paths.vpnkitPidFile, { force: true });
  await rm(paths.ethSocket, { force: true });
  await rm(paths.portSocket, { force: true });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The virtio-vpnkit UUID of this state directory, created on first use. vpnkit gives the same
 * UUID the same guest address, so keeping it keeps the guest's address. A file that does not
 * hold a UUID is replaced, and `replaced` says what it held.
 */
export async function ensureVpnkitUuid(
  path: string,
): Promise<{ uuid: string; created: boolean; replaced?: string }> {
  let text: string | null = null;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== null && UUID.test(text)) return { uuid: text.toLowerCase(), created: false };
  const uuid = randomUUID();
  await writeFileAtomic(path, `${uuid}\n`, { mode: 0o600 });
  return text === null ? { uuid, created: true } : { uuid, created: true, replaced: text.slice(0, 80) };
}
