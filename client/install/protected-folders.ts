// macOS privacy protection (TCC): a launchd job may not read ~/Documents, ~/Desktop,
// ~/Downloads or anything on /Volumes unless the user granted it access, which a daemon cannot
// ask for. Install runs from a Terminal that has that access, so the files look fine to it, and
// the service then fails to start with "Operation not permitted". Pure: tests table it.
import * as path from 'node:path';

/** The folders TCC guards for a background job, below each user's home. */
const HOME_FOLDERS = ['Desktop', 'Documents', 'Downloads'] as const;

export interface ProtectedPathInput {
  /** What the service needs to read: the node binary and main.js, as named and as resolved. */
  paths: string[];
  /** The home of the user the service runs as (or installs for). */
  home: string;
  platform: 'darwin' | 'linux';
}

export interface ProtectedPathFinding {
  /** The first protected path found. */
  path: string;
  /** The protected folder it lies in (e.g. /Users/alice/Documents or /Volumes). */
  folder: string;
  message: string;
  fix: string;
}

const within = (file: string, dir: string) => file === dir || file.startsWith(`${dir}/`);

/** The protected folder `file` lies in, or null. Any user's, not only `home`'s: TCC guards them all. */
function protectedFolderOf(file: string, home: string): string | null {
  const normal = path.posix.normalize(file);
  if (within(normal, '/Volumes')) return '/Volumes';
  const homes = [path.posix.normalize(home)];
  const m = /^(\/Users\/[^/]+)\//.exec(normal);
  if (m) homes.push(m[1]);
  for (const h of homes) {
    for (const name of HOME_FOLDERS) {
      const folder = `${h}/${name}`;
      if (within(normal, folder)) return folder;
    }
  }
  return null;
}

export function protectedPathFinding(input: ProtectedPathInput): ProtectedPathFinding | null {
  if (input.platform !== 'darwin') return null;
  for (const file of input.paths) {
    const folder = protectedFolderOf(file, input.home);
    if (folder === null) continue;
    const what = folder === '/Volumes' ? 'on another volume (/Volumes), which' : `in ${folder}, which`;
    return {
      path: file,
      folder,
      message: `the service would run ${file}, ${what} macOS privacy protection (TCC) keeps from launchd jobs: the daemon would fail to start with "Operation not permitted", though this Terminal can read it`,
      fix:
        folder === '/Volumes'
          ? 'move the checkout (and node) to the startup disk, e.g. ~/src/linuxkit-nix, or install linuxkit-nix globally (npm install -g), then run linuxkitctl install from there'
          : `move the checkout out of ${folder} (e.g. to ~/src/linuxkit-nix), or install linuxkit-nix globally (npm install -g), then run linuxkitctl install from there`,
    };
  }
  return null;
}
