// The daemon keeps what `linuxkitctl install` registered in place: the managed block in the Nix
// machines file, the managed block in the SSH drop-in and the pinned known_hosts file. It
// watches their folders (chokidar, filtered to the files, debounced) and, when our block is
// missing or says something else than it should (a hand edit, a tool rewriting
// /etc/nix/machines without it, a deleted file), puts it back with the same block functions
// install uses, keeping every foreign byte. A config change re-renders the blocks in place.
// Each change is a 'repair' event through the supervisor; what it cannot fix (permissions, a
// file another tool keeps rewriting, a symlink into the Nix store) is listed in status.errors
// under 'registration' until the files are right again.
//
// A daemon without an install manifest in its state folder has nothing to watch; the manifest
// itself is watched, so an install made while the daemon runs is picked up, and an uninstall
// (the manifest gone) ends the watch.
import type { EventEmitter } from 'node:events';
import { chown, lstat, readFile, readlink, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { StateEvent } from '../controller.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { ChangedMeanwhileError, rewriteSharedFile } from '../fs/shared-file-rewrite.js';
import { SerialRuns, WatchedFiles } from '../fs/watched-files.js';
import { builderKeyPaths } from '../keys/builder-keys.js';
import { installLayout, MANAGED_BLOCK_NAME, type InstallLayout } from '../host-files/install-layout.js';
import { parseManifest, type InstallManifest } from '../host-files/install-manifest.js';
import { readManagedBlock, upsertManagedBlock } from '../host-files/managed-block.js';
import {
  renderRegistration,
  type RegistrationConfig,
  type RegistrationTexts,
} from '../host-files/registration-files.js';

/** The source of this watcher's entries in status.errors. */
export const REGISTRATION_SOURCE = 'registration';
/** Quiet time after the last file event before looking; longer than the config watcher's, so an install that rewrites config.json and the blocks is seen with the new config. */
export const DRIFT_DEBOUNCE_MS = 500;
/** More drift repairs of one file than this within REPAIR_WINDOW_MS means something rewrites it on purpose: stop and say so. */
export const MAX_REPAIRS_PER_WINDOW = 3;
export const REPAIR_WINDOW_MS = 60_000;

/** The part of the supervisor the watcher needs. */
export interface RepairHost {
  readonly events: EventEmitter;
  reportEvent(type: 'repair', message: string, details?: Record<string, unknown>): void;
  reportError(source: string, message: string): void;
  clearError(source: string): void;
}

export interface DriftLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DriftWatcherOptions {
  /** <state>/install-manifest.json. */
  manifestPath: string;
  /** The host key the daemon's VM presents (keys/ssh_host_ed25519_key.pub). */
  hostPublicKeyLine: string;
  /** The config in force, read at every check. */
  config: () => RegistrationConfig;
  host: RepairHost;
  log: DriftLog;
  debounceMs?: number;
  now?: () => number;
  /** Tests replace it to count renders; the daemon uses renderRegistration. */
  render?: (
    layout: InstallLayout,
    config: RegistrationConfig,
    hostPublicKeyLine: string,
  ) => RegistrationTexts;
  /** Called after every check with what it found (tests wait on it). */
  onCheck?: (result: CheckResult) => void;
}

export type DriftReason = 'deleted' | 'missing' | 'changed' | 'config';

export interface Repair {
  file: string;
  what: string;
  reason: DriftReason;
  message: string;
}

export interface CheckResult {
  /** false: no install manifest, nothing is watched. */
  active: boolean;
  repairs: Repair[];
  problems: string[];
}

type Target =
  | { kind: 'block'; file: string; name: string; what: string; body: string }
  | { kind: 'whole'; file: string; what: string; body: string };

interface TargetState {
  /** What the last check wanted the file (block) to say: a file still saying that after a config change is an update, not drift. */
  lastWanted: string | null;
  repairTimes: number[];
  gaveUp: boolean;
}

/** The install layout a manifest describes, with its recorded paths (not recomputed from the environment). */
export function layoutFromManifest(m: InstallManifest, manifestPath: string): InstallLayout {
  const base = installLayout({ platform: m.platform, scope: m.scope, root: m.root, user: m.user });
  const stateDir = m.paths.stateDir;
  return {
    ...base,
    alias: m.alias,
    // The names install recorded win over the defaults (a named builder's block).
    blockName: m.blocks.find((b) => b.file === m.paths.machinesFile)?.name ?? base.blockName,
    service: m.service,
    stateDir,
    configPath: m.paths.configPath,
    socketPath: m.paths.socketPath,
    keys: builderKeyPaths(m.paths.keysDir),
    knownHostsFile: m.paths.knownHostsFile,
    controlDir: path.join(stateDir, 'ssh'),
    manifestPath,
    machinesFile: m.paths.machinesFile,
    sshDropIn: m.paths.sshDropIn,
  };
}

/** The files to keep right, and what each should say now. */
export function driftTargets(m: InstallManifest, texts: RegistrationTexts): Target[] {
  const blockName = (file: string) => m.blocks.find((b) => b.file === file)?.name ?? MANAGED_BLOCK_NAME;
  return [
    {
      kind: 'block',
      file: m.paths.machinesFile,
      name: blockName(m.paths.machinesFile),
      what: 'the machines entry',
      body: texts.machinesBody,
    },
    {
      kind: 'block',
      file: m.paths.sshDropIn,
      name: blockName(m.paths.sshDropIn),
      what: `the SSH entry for ${m.alias}`,
      body: texts.sshDropInBody,
    },
    { kind: 'whole', file: m.paths.knownHostsFile, what: 'the pinned host key', body: texts.knownHosts },
  ];
}

const REASON_TEXT: Record<Exclude<DriftReason, 'config'>, string> = {
  deleted: 'the file was deleted',
  missing: 'it was missing',
  changed: 'it had been changed',
};

export function repairMessage(what: string, file: string, reason: DriftReason): string {
  return reason === 'config'
    ? `updated ${what} in ${file} for the new config`
    : `restored ${what} in ${file} (${REASON_TEXT[reason]})`;
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class DriftWatcher {
  private readonly now: () => number;
  private readonly render: NonNullable<DriftWatcherOptions['render']>;
  private manifestText: string | null = null;
  private manifest: InstallManifest | null = null;
  private readonly states = new Map<string, TargetState>();
  private readonly files: WatchedFiles;
  private readonly checks = new SerialRuns();
  private closed = false;
  private readonly onHostEvent = (e: StateEvent) => {
    if (e.type === 'config') this.files.schedule();
  };

  constructor(private readonly opts: DriftWatcherOptions) {
    this.now = opts.now ?? Date.now;
    this.render = opts.render ?? renderRegistration;
    this.files = new WatchedFiles({
      debounceMs: opts.debounceMs ?? DRIFT_DEBOUNCE_MS,
      onSettled: () => {
        void this.check()
          .then(() => this.rewatch())
          .catch((err) => this.opts.log.warn({ err }, 'cannot watch the registration files'));
      },
      onError: (err) => this.opts.log.warn({ err }, 'registration file watcher failed'),
    });
  }

  /** Looks once (repairing drift from while the daemon was down), then follows the files. */
  async start(): Promise<CheckResult> {
    this.opts.host.events.on('event', this.onHostEvent);
    const first = await this.check();
    try {
      await this.rewatch();
    } catch (err) {
      // Without the watcher, config changes and restarts still bring the files in line.
      this.opts.log.warn({ err }, 'cannot watch the registration files');
    }
    return first;
  }

  /** Checks now, after any check in progress; resolves with what it found and did. */
  check(): Promise<CheckResult> {
    return this.checks.run(() => this.checkNow());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.opts.host.events.off('event', this.onHostEvent);
    await this.files.close();
    await this.checks.idle();
  }

  /** Follows the manifest and, with an install, the three files it registers. */
  private async rewatch(): Promise<void> {
    const files = [this.opts.manifestPath];
    if (this.manifest) {
      const p = this.manifest.paths;
      files.push(p.machinesFile, p.sshDropIn, p.knownHostsFile);
    }
    await this.files.follow(files);
  }

  private async loadManifest(): Promise<{ manifest: InstallManifest | null; problem?: string }> {
    let text: string | null;
    try {
      text = await readText(this.opts.manifestPath);
    } catch (err) {
      return { manifest: this.manifest, problem: `cannot read ${this.opts.manifestPath}: ${errText(err)}` };
    }
    if (text === null) {
      if (this.manifest)
        this.opts.log.info(
          { manifest: this.opts.manifestPath },
          'the install manifest is gone (uninstalled): no longer keeping the registration files',
        );
      this.manifest = null;
      this.manifestText = null;
      this.states.clear();
      return { manifest: null };
    }
    if (text === this.manifestText) return { manifest: this.manifest };
    try {
      const m = parseManifest(text, this.opts.manifestPath);
      if (!this.manifest)
        this.opts.log.info(
          {
            manifest: this.opts.manifestPath,
            machinesFile: m.paths.machinesFile,
            sshDropIn: m.paths.sshDropIn,
          },
          'keeping the registration files of this install',
        );
      this.manifest = m;
      this.manifestText = text;
      // A new install resets what was given up on: it just wrote the files.
      for (const s of this.states.values()) {
        s.gaveUp = false;
        s.repairTimes = [];
      }
      return { manifest: m };
    } catch (err) {
      return { manifest: this.manifest, problem: errText(err) };
    }
  }

  private async checkNow(): Promise<CheckResult> {
    const repairs: Repair[] = [];
    const problems: string[] = [];
    const { manifest, problem } = await this.loadManifest();
    if (problem) problems.push(problem);
    if (manifest && !this.closed) {
      const layout = layoutFromManifest(manifest, this.opts.manifestPath);
      let targets: Target[] = [];
      try {
        targets = driftTargets(
          manifest,
          this.render(layout, this.opts.config(), this.opts.hostPublicKeyLine),
        );
      } catch (err) {
        problems.push(`cannot render the registration for the current config: ${errText(err)}`);
      }
      for (const target of targets) {
        try {
          const outcome = await this.keep(target);
          if (outcome.repair) repairs.push(outcome.repair);
          if (outcome.problem) problems.push(outcome.problem);
        } catch (err) {
          problems.push(`cannot restore ${target.what} in ${target.file}: ${errText(err)}`);
        }
      }
    }
    for (const r of repairs) {
      this.opts.host.reportEvent('repair', r.message, {
        source: REGISTRATION_SOURCE,
        file: r.file,
        reason: r.reason,
      });
    }
    if (problems.length > 0) this.opts.host.reportError(REGISTRATION_SOURCE, problems.join('; '));
    else this.opts.host.clearError(REGISTRATION_SOURCE);
    const result = { active: manifest !== null, repairs, problems };
    this.opts.onCheck?.(result);
    return result;
  }

  /** Brings one file in line; says what it did, or why it did not. */
  private async keep(t: Target): Promise<{ repair?: Repair; problem?: string }> {
    const state = this.states.get(t.file) ?? { lastWanted: null, repairTimes: [], gaveUp: false };
    this.states.set(t.file, state);
    const lastWanted = state.lastWanted;
    state.lastWanted = t.body;

    const link = await lstat(t.file).then(
      (st) => st.isSymbolicLink(),
      () => false,
    );
    const before = await readText(t.file);
    const current = before === null ? null : t.kind === 'block' ? readManagedBlock(before, t.name) : before;
    // Compared byte for byte as install would write it, so a damaged or outdated marker line counts too.
    const change = (text: string) => (t.kind === 'block' ? upsertManagedBlock(text, t.name, t.body) : t.body);
    const after = change(before ?? '');
    if (after === before) {
      state.gaveUp = false;
      return {};
    }
    const reason: DriftReason =
      before === null
        ? 'deleted'
        : current === null
          ? 'missing'
          : current === lastWanted && lastWanted !== null
            ? 'config'
            : 'changed';

    if (link) {
      // nix-darwin and home-manager link /etc/nix/machines into the store: replacing the link would
      // break their next activation, and they would drop the block again anyway.
      const to = await readlink(t.file).catch(() => '?');
      return {
        problem: `${t.file} is a symbolic link (to ${to}) that lacks ${t.what}: linuxkitd does not replace links another tool manages; add the entry there (see linuxkitctl install --dry-run for the lines)`,
      };
    }
    if (reason !== 'config') {
      const now = this.now();
      state.repairTimes = state.repairTimes.filter((at) => now - at < REPAIR_WINDOW_MS);
      if (state.gaveUp || state.repairTimes.length >= MAX_REPAIRS_PER_WINDOW) {
        if (!state.gaveUp)
          this.opts.log.warn(
            { file: t.file, repairs: state.repairTimes.length },
            'the registration keeps being undone: no longer repairing this file',
          );
        state.gaveUp = true;
        return {
          problem: `${t.what} in ${t.file} was undone again after ${MAX_REPAIRS_PER_WINDOW} repairs within ${REPAIR_WINDOW_MS / 1000} s: something keeps rewriting the file, so linuxkitd stopped repairing it rather than fight; find what manages ${t.file}, then run linuxkitctl install`,
        };
      }
      state.repairTimes.push(now);
    }

    // Someone may have written the file while we rendered: their bytes win, and we look again.
    if ((await readText(t.file)) !== before) {
      this.files.schedule();
      return {};
    }
    const owner =
      before === null
        ? null
        : await stat(t.file).then(
            (st) => ({ uid: st.uid, gid: st.gid }),
            () => null,
          );
    try {
      if (before === null) await writeFileAtomic(t.file, after, { mode: 0o644 });
      else await rewriteSharedFile(t.file, before, change);
    } catch (err) {
      if (!(err instanceof ChangedMeanwhileError)) throw err;
      this.files.schedule();
      return {};
    }
    // Root rewriting a file keeps its owner (a user's known_hosts in a user install).
    if (owner && process.getuid?.() === 0) await chown(t.file, owner.uid, owner.gid);
    // The supervisor logs the repair event; no second line here.
    return { repair: { file: t.file, what: t.what, reason, message: repairMessage(t.what, t.file, reason) } };
  }
}

/** The daemon's watcher for `<stateDir>/install-manifest.json`; started, so it has looked once. */
export async function startDriftWatcher(opts: DriftWatcherOptions): Promise<DriftWatcher> {
  const w = new DriftWatcher(opts);
  await w.start();
  return w;
}
