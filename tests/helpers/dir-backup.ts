// For tests that change the real machine (/etc, /var/lib): a copy of folders taken before, and a
// restore that puts them back (files added are removed, files changed or removed are rewritten,
// folders added are removed), so a failing test still leaves the machine as it found it.
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  chmodSync,
  chownSync,
  mkdirSync,
} from 'node:fs';
import { join } from 'node:path';

interface Entry {
  kind: 'dir' | 'file' | 'other';
  mode: number;
  uid: number;
  gid: number;
  content?: Buffer;
}

export interface DirBackup {
  dirs: string[];
  entries: Map<string, Entry>;
}

function walk(path: string, into: Map<string, Entry>): void {
  const st = lstatSync(path);
  const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  if (st.isDirectory()) {
    into.set(path, { kind: 'dir', ...base });
    for (const name of readdirSync(path)) walk(join(path, name), into);
  } else if (st.isFile()) into.set(path, { kind: 'file', ...base, content: readFileSync(path) });
  else into.set(path, { kind: 'other', ...base });
}

/** Copies every regular file (content, mode, owner) and notes every folder under `dirs`. */
export function backupDirs(dirs: string[]): DirBackup {
  const entries = new Map<string, Entry>();
  for (const d of dirs) if (existsSync(d)) walk(d, entries);
  return { dirs, entries };
}

/** Puts `dirs` back as the backup saw them; returns what it had to change (empty: nothing). */
export function restoreDirs(backup: DirBackup): string[] {
  const now = backupDirs(backup.dirs).entries;
  const changed: string[] = [];
  // Added entries, deepest first so folders are empty when their turn comes.
  for (const path of [...now.keys()].sort().reverse()) {
    if (backup.entries.has(path)) continue;
    rmSync(path, { recursive: true, force: true });
    changed.push(`removed ${path}`);
  }
  for (const [path, e] of [...backup.entries].sort(([a], [b]) => a.localeCompare(b))) {
    const cur = now.get(path);
    if (e.kind === 'dir' && !cur) {
      mkdirSync(path, { mode: e.mode });
      changed.push(`recreated folder ${path}`);
    }
    if (e.kind !== 'file') continue;
    if (cur?.kind !== 'file' || !cur.content!.equals(e.content!) || cur.mode !== e.mode) {
      if (cur && cur.kind !== 'file') rmSync(path, { recursive: true, force: true });
      writeFileSync(path, e.content!);
      chmodSync(path, e.mode);
      chownSync(path, e.uid, e.gid);
      changed.push(`restored ${path}`);
    }
  }
  return changed;
}
