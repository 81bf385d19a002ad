// `linuxkitctl uninstall`: stops the service (or a daemon started without one), then undoes
// exactly what the install manifest lists. Files that were there before install keep every
// byte of their own; folders install made go only when empty (the daemon's logs and image
// cache are not ours to delete).
import { mayBeListening, probeUnixSocket } from '../../daemon/fs/unix-socket-probe.js';
import { builderKeyPaths } from '../../daemon/keys/builder-keys.js';
import { readFile } from 'node:fs/promises';
import type { CommandRunner } from './run-command.js';
import { runPaced, type Pacing } from './launchd-pacing.js';
import { parseLaunchdPlist } from '../../daemon/host-files/launchd-plist.js';
import {
  uninstallAfterCommands,
  uninstallStopCommands,
  type Argv,
  type ServiceContext,
} from './service-commands.js';
import { applyRemoval, readTexts } from './install-fs.js';
import type { InstallLayout } from '../../daemon/host-files/install-layout.js';
import { parseManifest, type InstallManifest } from '../../daemon/host-files/install-manifest.js';
import { planUninstall, type UninstallPlan } from './install-plan.js';
import { InstallError, queryService } from './installer.js';
import { unifiedDiff } from './unified-diff.js';
import { stopUnmanagedDaemon, UnmanagedDaemonError } from './unmanaged-daemon.js';

export interface FoundInstall {
  manifest: InstallManifest;
  manifestPath: string;
}

/** The first layout whose state directory holds an install manifest. */
export async function findInstall(layouts: InstallLayout[]): Promise<FoundInstall | null> {
  for (const layout of layouts) {
    let text: string | null;
    try {
      text = (await readTexts([layout.manifestPath])).get(layout.manifestPath) ?? null;
    } catch (err) {
      if (/EACCES|EPERM/.test((err as Error).message)) {
        throw new InstallError(
          `${layout.manifestPath} is not readable by this user (a ${layout.scope} install's state belongs to ${layout.user.name}): run this with sudo`,
        );
      }
      throw err;
    }
    if (text !== null)
      return { manifest: parseManifest(text, layout.manifestPath), manifestPath: layout.manifestPath };
  }
  return null;
}

export interface UninstallEnvironment {
  runner: CommandRunner;
  callServiceManager: boolean;
  actingForUser?: string;
  pacing?: Pacing;
}

export interface UninstallReport {
  /** What happened along the way that is worth saying (a slow bootout). */
  notes: string[];
  plan: UninstallPlan;
  commands: Array<{ argv: Argv; code: number | null; output: string }>;
  removedDirs: string[];
  /** Folders install created that still hold something (logs, image cache, control sockets). */
  keptDirs: string[];
  dryRunText: string;
}

async function currentTexts(m: InstallManifest, manifestPath: string): Promise<Map<string, string | null>> {
  return readTexts([
    ...m.blocks.map((b) => b.file),
    ...m.createdFiles,
    ...m.modified.map((x) => x.file),
    manifestPath,
  ]);
}

export function renderRemovalDryRun(plan: UninstallPlan, secretFiles: string[]): string {
  let out = '';
  for (const s of plan.steps) {
    if (s.after === null && secretFiles.includes(s.path)) {
      out += `# remove ${s.path}: private key\n`;
      continue;
    }
    out += `# ${s.after === null ? 'remove' : 'change'} ${s.path}: ${s.label}\n`;
    out += unifiedDiff(s.before, s.after, { before: s.path, after: s.path });
  }
  for (const d of plan.dirs) out += `# remove folder ${d} if empty\n`;
  return out;
}

export async function uninstall(
  found: FoundInstall,
  opts: { dryRun: boolean },
  env: UninstallEnvironment,
): Promise<UninstallReport> {
  const { manifest, manifestPath } = found;
  const ctx: ServiceContext = { service: manifest.service, actingForUser: env.actingForUser };
  const useServiceManager = env.callServiceManager && manifest.root === null;
  const report: UninstallReport = {
    notes: [],
    plan: { steps: [], dirs: [], kept: [] },
    commands: [],
    removedDirs: [],
    keptDirs: [],
    dryRunText: '',
  };

  if (useServiceManager) {
    const state = await queryService(ctx, env.runner);
    const stops = uninstallStopCommands(ctx, state);
    if (opts.dryRun) for (const argv of stops) report.commands.push({ argv, code: null, output: '' });
    else {
      const paced = await runPaced(stops, env.runner, {
        exitTimeOutSec: await launchdExitTimeOut(manifest),
        pacing: env.pacing,
      });
      report.commands.push(...paced.commands);
      report.notes.push(...paced.notes);
      if (paced.failure !== null)
        throw new InstallError(`could not stop the service: ${paced.failure}; nothing was removed`);
    }
  }

  // A daemon still running would put the registration back as it is removed (drift repair):
  // with a service manager it is stopped above; one started by hand (--root, --no-service, or
  // beside a service that is not loaded) is stopped here, once it is shown to be this install's.
  const { socketPath, stateDir } = manifest.paths;
  const answering = mayBeListening(await probeUnixSocket(socketPath));
  if (answering && opts.dryRun) {
    // A dry run stopped no service: a daemon answering with one is the service's own.
    if (!useServiceManager)
      report.notes.push(
        `linuxkitd answers on ${socketPath} without the service manager: uninstall stops it first (SIGTERM, once its pid is shown to be the linuxkitd of ${stateDir})`,
      );
  } else if (answering) {
    try {
      report.notes.push(
        await stopUnmanagedDaemon({ socketPath, stateDir, configPath: manifest.paths.configPath }),
      );
    } catch (err) {
      if (!(err instanceof UnmanagedDaemonError)) throw err;
      throw new InstallError(
        `linuxkitd still answers on ${socketPath} and would restore what uninstall removes, and uninstall did not stop it: ${err.message}. Stop it first (SIGTERM to the linuxkitd started with --state-dir ${stateDir}), then run uninstall again; nothing was removed`,
      );
    }
  }

  report.plan = planUninstall(manifest, await currentTexts(manifest, manifestPath), manifestPath);
  if (opts.dryRun) {
    const keys = builderKeyPaths(manifest.paths.keysDir);
    report.dryRunText = renderRemovalDryRun(report.plan, [keys.clientKey, keys.hostKey]);
    if (useServiceManager)
      for (const argv of uninstallAfterCommands(ctx, true))
        report.commands.push({ argv, code: null, output: '' });
    return report;
  }

  const { removedDirs, keptDirs } = await applyRemoval(report.plan);
  report.removedDirs = removedDirs;
  report.keptDirs = keptDirs;
  if (useServiceManager) {
    const unitRemoved = report.plan.steps.some((s) => s.path === manifest.service.file && s.after === null);
    for (const argv of uninstallAfterCommands(ctx, unitRemoved)) {
      const result = await env.runner(argv);
      report.commands.push({ argv, code: result.code, output: (result.stderr || result.stdout).trim() });
    }
  }
  return report;
}

/** The installed job's ExitTimeOut (how long launchd may take to stop it); 60 s when unreadable. */
async function launchdExitTimeOut(manifest: InstallManifest): Promise<number> {
  if (manifest.service.manager !== 'launchd') return 0;
  try {
    return parseLaunchdPlist(await readFile(manifest.service.file, 'utf8'), manifest.service.file)
      .ExitTimeOut;
  } catch {
    return 60;
  }
}
