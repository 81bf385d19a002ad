// linuxkitctl uninstall: stops the service and removes exactly what install added, as its
// manifest records. The work is in client/install/uninstaller.ts.
import { existsSync } from 'node:fs';
import type { CommandRunner } from '../install/run-command.js';
import {
  candidateLayouts,
  currentProcessFacts,
  formatFinding,
  parseCommandArgs,
  processIo,
  UsageError,
  type CommandIo,
  type ProcessFacts,
} from './cli-context.js';

export const UNINSTALL_USAGE = `Usage: linuxkitctl uninstall [--system|--user] [--builder NAME] [--dry-run] [--root DIR]

Stops the daemon (through launchd or systemd; a linuxkitd running without them, as after
install --no-service, with SIGTERM once the pid it reports is shown to be the linuxkitd of the
install's state folder) and removes what linuxkitctl install added, as recorded in
<state dir>/install-manifest.json: the files it created, its blocks in /etc/nix/machines and
the SSH drop-in, the launchd job or systemd unit, and the keys it made. Files that existed
before install keep every line of their own. Folders install made are removed when empty; the
state folder stays while it holds the daemon's logs or image cache (the command says so).

  --system / --user   which install to remove (default: whichever is found, system first)
  --dry-run           print what would be removed, as diffs, and change nothing
  --root DIR          the install made with --root DIR (no service manager is called)
  --builder NAME      the builder installed with --builder NAME (default: the unnamed one)
`;

export interface UninstallDeps {
  facts: ProcessFacts;
  runner: CommandRunner;
  /** Whether systemd is the running init (Linux). */
  systemdRuns: () => boolean;
}

function systemdRuns(): boolean {
  return existsSync('/run/systemd/system');
}

/**
 * Whether uninstall calls launchctl/systemctl: not under --root, and not on a Linux machine that
 * was not booted with systemd (a container, as scripts/up.sh meets; its install was --no-service).
 */
export function serviceManagerUse(
  root: string | null,
  platform: 'darwin' | 'linux',
  systemdRunsHere: () => boolean,
): { call: boolean; note: string | null } {
  if (root !== null) return { call: false, note: null };
  if (platform === 'linux' && !systemdRunsHere()) {
    return {
      call: false,
      note: 'systemd does not run on this machine (no /run/systemd/system): no service manager was called',
    };
  }
  return { call: true, note: null };
}

export async function runUninstall(
  argv: string[],
  io: CommandIo = processIo,
  deps?: Partial<UninstallDeps>,
): Promise<number> {
  try {
    const { common, values } = parseCommandArgs('uninstall', argv, { 'dry-run': { type: 'boolean' } });
    if (common.help) {
      io.out(UNINSTALL_USAGE);
      return 0;
    }
    const facts = deps?.facts ?? currentProcessFacts();
    const runner = deps?.runner ?? (await import('../install/run-command.js')).runCommand;
    const candidates = await candidateLayouts(common.scope, common.root, facts, common.builder);
    const { findInstall, uninstall } = await import('../install/uninstaller.js');
    let found = null;
    let acting: string | undefined;
    for (const c of candidates) {
      found = await findInstall([c.layout]);
      acting = c.actingForUser;
      if (found) break;
    }
    if (!found) {
      const looked = candidates.map((c) => c.layout.manifestPath).join(' or ');
      throw new UsageError(`nothing to uninstall: no install manifest at ${looked}`);
    }
    const dryRun = values['dry-run'] === true;
    const manager = serviceManagerUse(common.root, facts.platform, deps?.systemdRuns ?? systemdRuns);
    const report = await uninstall(
      found,
      { dryRun },
      { runner, callServiceManager: manager.call, actingForUser: acting },
    );
    if (manager.note) report.notes.push(manager.note);

    let text = dryRun
      ? `linuxkitctl uninstall --dry-run: nothing was changed\n\n${report.dryRunText}`
      : 'linuxkitctl uninstall\n';
    if (!dryRun) {
      for (const s of report.plan.steps)
        text += `  ${s.after === null ? 'removed' : 'changed'} ${s.path} (${s.label})\n`;
      for (const d of report.removedDirs) text += `  removed folder ${d}\n`;
    }
    for (const c of report.commands) {
      text +=
        c.code === null
          ? `would run: ${c.argv.join(' ')}\n`
          : `ran: ${c.argv.join(' ')}${c.code === 0 ? '' : ` (exit ${c.code}: ${c.output})`}\n`;
    }
    for (const n of report.notes) text += formatFinding('note', n);
    for (const k of report.plan.kept) text += formatFinding('note', `kept ${k}`);
    for (const d of report.keptDirs) {
      text += formatFinding(
        'note',
        `kept folder ${d}: it holds files install did not make (logs, image cache, sockets)`,
        `remove it by hand if you want it gone: rm -r '${d}'`,
      );
    }
    io.out(text);
    return 0;
  } catch (err) {
    io.err(`linuxkitctl uninstall: ${(err as Error).message}\n`);
    return 1;
  }
}
