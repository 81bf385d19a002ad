// Files that nix-darwin or home-manager own are links into the Nix store, often through
// /etc/static. We never replace such a link (the tool would abort its next switch, or undo us);
// this tells them apart from an admin's own link.
import { lstat, readlink } from 'node:fs/promises';
import * as path from 'node:path';

const STORE_PREFIXES = ['/nix/store/', '/etc/static/'];

/**
 * Where `file` links to when it is a link into the Nix store or /etc/static; null otherwise.
 * `root`: an install under --root DIR, where DIR/etc/static counts too.
 */
export async function storeLinkTarget(file: string, root: string | null = null): Promise<string | null> {
  try {
    if (!(await lstat(file)).isSymbolicLink()) return null;
  } catch {
    return null;
  }
  // One readlink, not realpath: the target may not exist here (a --root test, a GC'd path),
  // and /etc/static/... already says who owns it.
  const to = path.resolve(path.dirname(file), await readlink(file));
  const prefixes =
    root === null ? STORE_PREFIXES : [...STORE_PREFIXES, ...STORE_PREFIXES.map((p) => path.join(root, p))];
  return prefixes.some((p) => to.startsWith(p)) ? to : null;
}

/** The first of `file` and its parent folders up to `stopAt` (exclusive) that is a store link. */
export async function storeLinkOnPath(
  file: string,
  stopAt: string,
  root: string | null = null,
): Promise<{ path: string; target: string } | null> {
  for (let p = file; p !== stopAt && p !== path.dirname(p); p = path.dirname(p)) {
    const target = await storeLinkTarget(p, root);
    if (target !== null) return { path: p, target };
  }
  return null;
}
