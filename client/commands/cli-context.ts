// What install, uninstall and doctor share on the command line: --system/--user/--root/--builder,
// and who the daemon runs as. Only node: imports (and the node-only builder naming rules and the
// data-only backend registry), so loading a command stays cheap; the engines in
// daemon/registration are imported when a command runs.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { allHostTools } from '../../daemon/backends/backend-list.js';
import { builderNameProblem } from '../../daemon/config/builders.js';
import type { InstallLayout, InstallScope, ServiceUser } from '../../daemon/host-files/install-layout.js';

export interface CommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIo: CommandIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CommonFlags {
  scope: InstallScope | null;
  root: string | null;
  /** --builder NAME: one of several builders side by side; null: the default builder. */
  builder: string | null;
  help: boolean;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string };

/** Parses `argv` with the common flags plus `extra`; unknown flags and stray words are usage errors. */
export function parseCommandArgs<E extends Record<string, OptionSpec>>(
  command: string,
  argv: string[],
  extra: E,
): { common: CommonFlags; values: Record<string, string | boolean | undefined> } {
  const options = {
    system: { type: 'boolean' },
    user: { type: 'boolean' },
    root: { type: 'string' },
    builder: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    ...extra,
  } as const;
  let parsed: ReturnType<
    typeof parseArgs<{ options: Record<string, OptionSpec>; strict: true; allowPositionals: false }>
  >;
  try {
    parsed = parseArgs({
      args: argv,
      options: options as Record<string, OptionSpec>,
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError(
      `${(err as Error).message.replace(/\. To specify a positional.*$/s, '')} (see linuxkitctl ${command} --help)`,
    );
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.system && v.user) throw new UsageError('--system and --user exclude each other');
  let root: string | null = null;
  if (typeof v.root === 'string') {
    if (v.root === '') throw new UsageError('--root needs a directory');
    root = path.resolve(v.root);
    if (!existsSync(root) || !statSync(root).isDirectory())
      throw new UsageError(`--root ${v.root} is not an existing directory`);
  }
  let builder: string | null = null;
  if (typeof v.builder === 'string') {
    const problem = builderNameProblem(v.builder);
    if (problem) throw new UsageError(`--builder: ${problem}`);
    builder = v.builder;
  }
  return {
    common: { scope: v.system ? 'system' : v.user ? 'user' : null, root, builder, help: v.help === true },
    values: v,
  };
}

export function currentPlatform(): 'darwin' | 'linux' {
  if (process.platform === 'darwin' || process.platform === 'linux') return process.platform;
  throw new UsageError(`linuxkit-nix installs on macOS and Linux; this is ${process.platform}`);
}

/** The process's own account and the sudo caller behind it, if any. */
export interface ProcessFacts {
  platform: 'darwin' | 'linux';
  uid: number;
  gid: number;
  username: string;
  home: string;
  env: NodeJS.ProcessEnv;
}

export function currentProcessFacts(): ProcessFacts {
  const info = os.userInfo();
  return {
    platform: currentPlatform(),
    uid: info.uid,
    gid: info.gid,
    username: info.username,
    home: os.homedir(),
    env: process.env,
  };
}

/** A user's home folder from the system's user database (sudo does not keep $HOME everywhere). */
export function lookupHome(name: string, platform: 'darwin' | 'linux'): string {
  try {
    if (platform === 'darwin') {
      const out = execFileSync('dscl', ['.', '-read', `/Users/${name}`, 'NFSHomeDirectory'], {
        encoding: 'utf8',
      });
      const m = /NFSHomeDirectory:\s*(\S.*)$/m.exec(out);
      if (m) return m[1].trim();
    } else {
      const out = execFileSync('getent', ['passwd', name], { encoding: 'utf8' });
      const home = out.trim().split(':')[5];
      if (home) return home;
    }
  } catch {
    // fall through to the error below
  }
  throw new UsageError(`cannot find the home folder of user ${name}`);
}

export interface ResolvedUser {
  user: ServiceUser;
  /** Root acts for this user (sudo ... --user). */
  actingForUser?: string;
  /** Their XDG folders, when this process is them. */
  xdg: { XDG_STATE_HOME?: string; XDG_CONFIG_HOME?: string };
}

/**
 * Who the daemon runs as. --system: root. --user: the user running the command, or, under
 * sudo, the user who ran sudo (so `sudo linuxkitctl install --user` can write /etc and still
 * install for you). Root itself cannot have a --user install, except under --root for trying.
 */
export function resolveServiceUser(
  scope: InstallScope,
  root: string | null,
  p: ProcessFacts,
  homeOf: (name: string) => string = (name) => lookupHome(name, p.platform),
): ResolvedUser {
  if (scope === 'system') {
    return {
      user: { name: 'root', uid: 0, gid: 0, home: p.platform === 'darwin' ? '/var/root' : '/root' },
      xdg: {},
    };
  }
  const xdg = { XDG_STATE_HOME: p.env.XDG_STATE_HOME, XDG_CONFIG_HOME: p.env.XDG_CONFIG_HOME };
  if (p.uid !== 0) return { user: { name: p.username, uid: p.uid, gid: p.gid, home: p.home }, xdg };
  const sudoUid = Number(p.env.SUDO_UID);
  const sudoUser = p.env.SUDO_USER;
  if (sudoUser && Number.isInteger(sudoUid) && sudoUid !== 0) {
    const gid = Number(p.env.SUDO_GID);
    return {
      user: {
        name: sudoUser,
        uid: sudoUid,
        gid: Number.isInteger(gid) ? gid : sudoUid,
        home: homeOf(sudoUser),
      },
      actingForUser: sudoUser,
      xdg: {},
    };
  }
  if (root !== null) return { user: { name: p.username, uid: p.uid, gid: p.gid, home: p.home }, xdg };
  throw new UsageError(
    '--user installs for the user who runs it, and that is root here: use --system, or run sudo from your own account',
  );
}

/** Folders on PATH holding the hypervisor tools of any backend in the registry, in PATH order. */
export function hypervisorToolDirs(pathEnv: string | undefined): string[] {
  const tools = allHostTools();
  const dirs: string[] = [];
  for (const dir of (pathEnv ?? '').split(':')) {
    if (!path.isAbsolute(dir) || dirs.includes(dir)) continue;
    if (tools.some((t) => existsSync(path.join(dir, t)))) dirs.push(dir);
  }
  return dirs;
}

/** A multi-user Nix runs nix-daemon behind this socket. */
export function nixDaemonSocketExists(): boolean {
  return existsSync('/nix/var/nix/daemon-socket/socket');
}

/** "warning: ...\n  fix: ..." blocks, indented the same way by every command. */
export function formatFinding(kind: 'warning' | 'note', message: string, fix?: string): string {
  return `${kind}: ${message}\n${fix ? `  fix: ${fix}\n` : ''}`;
}

/** The install layouts to look in: the named scope, else system then user. */
export async function candidateLayouts(
  scope: InstallScope | null,
  root: string | null,
  facts: ProcessFacts,
  builder: string | null = null,
): Promise<Array<{ layout: InstallLayout; actingForUser?: string }>> {
  const { installLayout } = await import('../../daemon/host-files/install-layout.js');
  const out: Array<{ layout: InstallLayout; actingForUser?: string }> = [];
  for (const s of scope ? [scope] : (['system', 'user'] as const)) {
    let who: ReturnType<typeof resolveServiceUser>;
    try {
      who = resolveServiceUser(s, root, facts);
    } catch (err) {
      if (scope) throw err;
      continue; // root without sudo has no --user install to look for
    }
    out.push({
      layout: installLayout({
        platform: facts.platform,
        scope: s,
        root,
        user: who.user,
        env: who.xdg,
        builder,
      }),
      actingForUser: who.actingForUser,
    });
  }
  return out;
}
