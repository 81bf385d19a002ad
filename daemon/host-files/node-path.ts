// Which node binary the launchd job or systemd unit names. process.execPath is the resolved
// binary (macOS realpaths it): /opt/homebrew/Cellar/node/<version>/bin/node or a /nix/store
// path, which `brew upgrade` cleanup or a Nix garbage collection deletes, and the service then
// cannot start. The node found on PATH, unresolved, is the stable name (/opt/homebrew/bin/node,
// ~/.nix-profile/bin/node), and it is the node `#!/usr/bin/env node` ran this command with.
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';

export interface NodeSearch {
  /** The PATH to search, as the environment gives it. */
  pathEnv: string | undefined;
  platform: NodeJS.Platform;
  /** Whether a file is there and may be executed (injectable: tests table PATHs without files). */
  isExecutable: (file: string) => boolean;
}

/** The first absolute PATH entry holding an executable `node`, not resolved; null when none does. */
export function findNodeOnPath(search: NodeSearch): string | null {
  const separator = search.platform === 'win32' ? ';' : ':';
  const name = search.platform === 'win32' ? 'node.exe' : 'node';
  for (const dir of (search.pathEnv ?? '').split(separator)) {
    // An empty or relative entry means "relative to the current folder": launchd has none.
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    if (search.isExecutable(candidate)) return candidate;
  }
  return null;
}

/** The node for the service: the one on PATH, else the running binary. */
export function serviceNodePath(
  search: NodeSearch,
  execPath: string,
): { node: string; from: 'PATH' | 'execPath' } {
  const found = findNodeOnPath(search);
  return found === null ? { node: execPath, from: 'execPath' } : { node: found, from: 'PATH' };
}

/** A regular file this process may execute. */
export function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why a node path stops working after an upgrade or a garbage collection; null when it is stable. */
export function versionedNodeProblem(node: string): { message: string; fix: string } | null {
  if (node.includes('/Cellar/')) {
    return {
      message: `the service runs node as ${node}, a versioned Homebrew path: after brew upgrade (and its cleanup) it is gone and the service cannot start`,
      fix: "put Homebrew's stable link first on PATH (/opt/homebrew/bin/node, or /usr/local/bin/node on Intel) and run linuxkitctl install again",
    };
  }
  if (node.startsWith('/nix/store/')) {
    return {
      message: `the service runs node as ${node}, a path in the Nix store: a garbage collection may delete it and the service then cannot start`,
      fix: 'put a profile link first on PATH (~/.nix-profile/bin/node, /run/current-system/sw/bin/node or /etc/profiles/per-user/<you>/bin/node) and run linuxkitctl install again',
    };
  }
  return null;
}
