// The file-system side of install and uninstall: snapshots of the files a plan compares
// against, the folders that are missing, a permission check before anything changes, and
// applying a plan. Every write goes through writeFileAtomic.
import { constants as fsConstants } from 'node:fs';
import { access, chmod, chown, lstat, mkdir, readFile, rmdir, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../../daemon/fs/atomic-write.js';
import { ChangedMeanwhileError, rewriteSharedFile } from '../../daemon/fs/shared-file-rewrite.js';
import { upsertManagedBlock } from '../../daemon/host-files/managed-block.js';
import type { InstallPlan, Owner, PlannedDir, PlannedWrite, UninstallPlan } from './install-plan.js';

/** Text of each file, null when it does not exist. Other errors name the file. */
export async function readTexts(paths: Iterable<string>): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (const p of paths) {
    if (out.has(p)) continue;
    try {
      out.set(p, await readFile(p, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') out.set(p, null);
      else throw new Error(`cannot read ${p}: ${(err as Error).message}`);
    }
  }
  return out;
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The folders to create for `wanted`, parents first, each once. A missing ancestor gets mode
 * 0755 and the owner `ancestorOwner` picks (inside the service user's home: theirs).
 */
export async function missingDirs(
  wanted: PlannedDir[],
  ancestorOwner: (dir: string) => Owner,
): Promise<PlannedDir[]> {
  const out: PlannedDir[] = [];
  const seen = new Set<string>();
  for (const w of wanted) {
    const chain: PlannedDir[] = [];
    for (let dir = w.path; ; dir = path.dirname(dir)) {
      if (seen.has(dir) || (await pathExists(dir))) break;
      chain.unshift(dir === w.path ? w : { path: dir, mode: 0o755, owner: ancestorOwner(dir) });
      if (path.dirname(dir) === dir) break;
    }
    for (const d of chain) {
      if (!seen.has(d.path)) out.push(d);
      seen.add(d.path);
    }
  }
  return out;
}

/** Paths whose folder (or nearest existing ancestor) this process may not write. */
export async function unwritable(paths: Iterable<string>): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let dir = path.dirname(p);
    while (!(await pathExists(dir)) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    try {
      await access(dir, fsConstants.W_OK);
    } catch {
      out.push(p);
    }
  }
  return out;
}

export interface Ownership {
  /** The service user's ids, when this process is root acting for another user; else null. */
  service: { uid: number; gid: number } | null;
  /** This process runs as root (so a rewrite can hand an existing file back to its owner). */
  processIsRoot: boolean;
}

async function ownerBefore(p: string): Promise<{ uid: number; gid: number } | null> {
  try {
    const st = await stat(p);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}

/** Creates the plan's folders; returns the ones it really created (a racing creator keeps its own). */
export async function createDirs(dirs: PlannedDir[], own: Ownership): Promise<string[]> {
  const created: string[] = [];
  for (const d of dirs) {
    try {
      await mkdir(d.path, { mode: d.mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new Error(`cannot create ${d.path}: ${(err as Error).message}`);
    }
    created.push(d.path);
    // mkdir's mode passes through the umask; the plan's mode is meant exactly.
    await chmod(d.path, d.mode);
    if (d.owner === 'service' && own.service) await chown(d.path, own.service.uid, own.service.gid);
  }
  return created;
}

/** How a planned write turns any content of its file into what it writes. */
function changeOf(w: PlannedWrite): (text: string) => string {
  const { block, after } = w;
  return block ? (text) => upsertManagedBlock(text, block.name, block.body) : () => after;
}

/** Writes each planned file atomically; an existing file keeps its mode and owner. */
export async function applyWrites(plan: Pick<InstallPlan, 'writes'>, own: Ownership): Promise<void> {
  for (const w of plan.writes) {
    const previous = w.before === null ? null : await ownerBefore(w.path);
    try {
      if (w.before === null) await writeFileAtomic(w.path, w.after, { mode: w.mode });
      else await rewriteSharedFile(w.path, w.before, changeOf(w));
    } catch (err) {
      // The installer plans again from what is there now.
      if (err instanceof ChangedMeanwhileError) throw err;
      throw new Error(`cannot write ${w.path}: ${(err as Error).message}`);
    }
    if (previous && own.processIsRoot) await chown(w.path, previous.uid, previous.gid);
    else if (!previous && w.owner === 'service' && own.service)
      await chown(w.path, own.service.uid, own.service.gid);
  }
}

/** Hands files made by this (root) process, such as new keys, to the service user. */
export async function chownToService(paths: string[], own: Ownership): Promise<void> {
  if (!own.service) return;
  for (const p of paths) await chown(p, own.service.uid, own.service.gid);
}

/** Applies an uninstall plan; returns the folders it left because they were not empty. */
export async function applyRemoval(
  plan: UninstallPlan,
): Promise<{ removedDirs: string[]; keptDirs: string[] }> {
  for (const s of plan.steps) {
    if (s.after === null) {
      try {
        await unlink(s.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          throw new Error(`cannot remove ${s.path}: ${(err as Error).message}`);
      }
    } else {
      const previous = await ownerBefore(s.path);
      await writeFileAtomic(s.path, s.after);
      if (previous && process.getuid?.() === 0) await chown(s.path, previous.uid, previous.gid);
    }
  }
  const removedDirs: string[] = [];
  const keptDirs: string[] = [];
  for (const d of plan.dirs) {
    try {
      await rmdir(d);
      removedDirs.push(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') keptDirs.push(d);
      else throw new Error(`cannot remove folder ${d}: ${(err as Error).message}`);
    }
  }
  return { removedDirs, keptDirs };
}
