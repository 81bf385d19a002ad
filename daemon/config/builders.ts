// Several builders side by side (say one aarch64 and one x86_64): each is its own linuxkitd with
// its own state directory, control socket, SSH alias, service label and managed blocks. Every
// one of those names derives from the builder's name here, and only here: linuxkitd
// (--builder NAME), install/uninstall/doctor (--builder NAME) and linuxkitctl (--builder NAME,
// status --all) all go through these functions. No name (null) is the default builder, which
// keeps the names it always had.
//
//   builder      state directory                    alias                  launchd label / systemd unit                         machines block
//   (default)    <base>                             linuxkit-builder       org.nix-community.linuxkit-nix / linuxkit-nix.service       linuxkit-nix
//   arm          <base>/builders/arm                linuxkit-builder-arm   org.nix-community.linuxkit-nix.arm / linuxkit-nix-arm.service linuxkit-nix-arm
//
// <base> is the default state directory (daemon/config/paths.ts, or $LINUXKIT_NIX_STATE_DIR).
// Named builders live below the default one's folder so that `status --all` finds every builder
// of this user (or of the system) in one place. Only node: imports, so linuxkitctl loads it cheaply.
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';

/** The folder inside the default state directory that holds the named builders' state directories. */
export const BUILDERS_DIR = 'builders';

/** 1 to 16 of a-z, 0-9 and '-', starting and ending with a letter or digit. */
const NAME = /^[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?$/;

/** Why `name` cannot name a builder, or null when it can. */
export function builderNameProblem(name: string): string | null {
  if (NAME.test(name)) return null;
  return `a builder name is 1 to 16 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (e.g. arm); got ${JSON.stringify(name)}`;
}

export interface BuilderNames {
  /** null: the default builder. */
  builder: string | null;
  /** The SSH host alias in the machines file and the SSH drop-in. */
  alias: string;
  launchdLabel: string;
  systemdUnit: string;
  /** The managed blocks' name in shared files (/etc/nix/machines, the SSH drop-in). */
  blockName: string;
}

const DEFAULT_NAMES: BuilderNames = {
  builder: null,
  alias: 'linuxkit-builder',
  launchdLabel: 'org.nix-community.linuxkit-nix',
  systemdUnit: 'linuxkit-nix.service',
  blockName: 'linuxkit-nix',
};

function checked(name: string): string {
  const problem = builderNameProblem(name);
  if (problem) throw new Error(problem);
  return name;
}

export function builderNames(builder: string | null): BuilderNames {
  if (builder === null) return { ...DEFAULT_NAMES };
  const name = checked(builder);
  return {
    builder: name,
    alias: `${DEFAULT_NAMES.alias}-${name}`,
    launchdLabel: `${DEFAULT_NAMES.launchdLabel}.${name}`,
    systemdUnit: `linuxkit-nix-${name}.service`,
    blockName: `${DEFAULT_NAMES.blockName}-${name}`,
  };
}

/** The builder's state directory, given the default one (`base`). */
export function builderStateDir(base: string, builder: string | null): string {
  return builder === null ? base : path.join(base, BUILDERS_DIR, checked(builder));
}

export interface FoundBuilder {
  builder: string | null;
  stateDir: string;
}

/**
 * The builders that have a state directory under `base`: the default one when `base` holds a
 * config or a socket, then the named ones in name order. A folder under builders/ counts when its
 * name is a builder name and it holds a config.json or a daemon.sock.
 */
export async function findBuilders(
  base: string,
  names: { config: string; socket: string },
): Promise<FoundBuilder[]> {
  const isBuilderDir = async (dir: string) => {
    for (const file of [names.config, names.socket]) {
      if (
        await stat(path.join(dir, file)).then(
          () => true,
          () => false,
        )
      )
        return true;
    }
    return false;
  };
  const out: FoundBuilder[] = [];
  if (await isBuilderDir(base)) out.push({ builder: null, stateDir: base });
  let entries: string[] = [];
  try {
    entries = await readdir(path.join(base, BUILDERS_DIR));
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    if (builderNameProblem(name) !== null) continue;
    const dir = path.join(base, BUILDERS_DIR, name);
    if (await isBuilderDir(dir)) out.push({ builder: name, stateDir: dir });
  }
  return out;
}
