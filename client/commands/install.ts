// linuxkitctl install: sets up keys, config, Nix and SSH registration and the service, then
// starts the daemon. Argument handling and output live here; the work is in
// client/install/installer.ts, loaded only when the command runs.
import { backendSettingChoices } from '../../daemon/backends/backend-list.js';
import type { HostInfo } from '../../daemon/config/load.js';
import type { DaemonProgram } from '../../daemon/host-files/daemon-service.js';
import type { CommandRunner } from '../install/run-command.js';
import {
  currentProcessFacts,
  formatFinding,
  hypervisorToolDirs,
  nixDaemonSocketExists,
  parseCommandArgs,
  resolveServiceUser,
  processIo,
  UsageError,
  type CommandIo,
  type ProcessFacts,
} from './cli-context.js';

export const INSTALL_USAGE = `Usage: linuxkitctl install [--system|--user] [--builder NAME] [--dry-run] [--root DIR] [settings]

Sets up everything the builder needs and starts it: ed25519 keys, the daemon's config, a
managed block in /etc/nix/machines, an SSH drop-in for the alias linuxkit-builder under
/etc/ssh/ssh_config.d/, and a launchd job (macOS) or systemd unit (Linux) that keeps linuxkitd
running. Running it again updates everything in place; it changes nothing when all is current.

  --system         a LaunchDaemon / system unit run by root (default as root or with a multi-user Nix)
  --user           a LaunchAgent / systemd --user unit run by you (default with a single-user Nix);
                   writing /etc still needs root: sudo linuxkitctl install --user
  --dry-run        print every change as a unified diff and change nothing
  --root DIR       install under DIR instead of /, for trying it or testing: nothing outside
                   DIR changes and no service manager is called
  --builder NAME   a builder beside the default one (e.g. --builder arm --arch aarch64): its
                   own daemon, state folder (<state dir>/builders/NAME), keys, SSH alias
                   linuxkit-builder-NAME, machines block and service (linuxkit-nix-NAME)
  --no-service     write everything (the unit or plist too) but call no service manager, for
                   machines where none runs (a container); it prints the command to run linuxkitd

Settings (written to the daemon's config.json):
  --backend NAME   ${backendSettingChoices().padEnd(28)} --accel NAME   auto, hvf, kvm or tcg
  --arch NAME      x86_64 or aarch64            --cpus N       1 to 64
  --memory MiB     256 to 262144                --ssh-port N   1024 to 65535
  --mode NAME      always, or on-demand: the first build starts the VM, idleness stops it

Undo with linuxkitctl uninstall; check with linuxkitctl doctor. See docs/install.md.
`;

const SETTING_FLAGS = ['backend', 'accel', 'arch', 'cpus', 'memory', 'ssh-port', 'mode'] as const;

/** What tests replace: the machine the command believes it runs on, and the outside world. */
export interface InstallDeps {
  facts: ProcessFacts;
  host: HostInfo;
  runner: CommandRunner;
  program: DaemonProgram;
  toolDirs: string[];
  nixDaemonSocketExists: boolean;
}

async function defaultDeps(): Promise<InstallDeps> {
  const facts = currentProcessFacts();
  const { runCommand } = await import('../install/run-command.js');
  const { currentDaemonProgram } = await import('../../daemon/host-files/daemon-service.js');
  // The machine's own architecture: under Rosetta process.arch would pick an x86_64 guest.
  const { currentHost } = await import('../../daemon/config/load.js');
  return {
    facts,
    host: { ...currentHost(), platform: facts.platform },
    runner: runCommand,
    program: currentDaemonProgram(facts.env),
    toolDirs: hypervisorToolDirs(facts.env.PATH),
    nixDaemonSocketExists: nixDaemonSocketExists(),
  };
}

export async function runInstall(
  argv: string[],
  io: CommandIo = processIo,
  deps?: Partial<InstallDeps>,
): Promise<number> {
  try {
    const options = Object.fromEntries([
      ...SETTING_FLAGS.map((f) => [f, { type: 'string' as const }]),
      ['dry-run', { type: 'boolean' as const }],
      ['no-service', { type: 'boolean' as const }],
    ]);
    const { common, values } = parseCommandArgs('install', argv, options);
    if (common.help) {
      io.out(INSTALL_USAGE);
      return 0;
    }
    const d: InstallDeps = { ...(await defaultDeps()), ...deps };
    const { parseDaemonArgs } = await import('../../daemon/config/flags.js');
    const settingArgs = SETTING_FLAGS.flatMap((f) =>
      typeof values[f] === 'string' ? [`--${f}`, values[f] as string] : [],
    );
    const parsed = parseDaemonArgs(settingArgs);
    if (!parsed.ok) throw new UsageError(parsed.errors.map((e) => e.message).join('; '));

    const { defaultScope } = await import('../../daemon/host-files/install-layout.js');
    const scope =
      common.scope ??
      defaultScope({
        nixDaemonSocketExists: d.nixDaemonSocketExists,
        nixRemote: d.facts.env.NIX_REMOTE,
        processUid: d.facts.uid,
      });
    const who = resolveServiceUser(scope, common.root, d.facts);
    const { install } = await import('../install/installer.js');
    const dryRun = values['dry-run'] === true;
    const report = await install(
      { scope, dryRun, root: common.root, overrides: parsed.args.overrides, builder: common.builder },
      {
        host: { ...d.host, platform: d.facts.platform },
        user: who.user,
        actingForUser: who.actingForUser,
        xdg: who.xdg,
        processUid: d.facts.uid,
        program: d.program,
        toolDirs: d.toolDirs,
        nixConfDir: d.facts.env.NIX_CONF_DIR,
        nixConfig: d.facts.env.NIX_CONFIG,
        runner: d.runner,
        callServiceManager: common.root === null && values['no-service'] !== true,
      },
    );

    const { layout, plan } = report;
    const where = layout.root === null ? '' : ` under ${layout.root}`;
    const named = layout.builder === null ? '' : `builder ${layout.builder}, `;
    const kind = `${named}${layout.scope} ${layout.service.manager === 'launchd' ? (layout.scope === 'system' ? 'LaunchDaemon' : 'LaunchAgent') : 'unit'}`;
    let text = dryRun
      ? `linuxkitctl install --dry-run (${kind}${where}): nothing was changed\n\n${report.dryRunText}`
      : `linuxkitctl install (${kind}${where}, daemon runs as ${layout.user.name})\n`;
    if (!dryRun) {
      for (const dir of plan.dirs) text += `  created folder ${dir.path}\n`;
      for (const k of plan.newKeyFiles) text += `  created ${k}\n`;
      for (const w of plan.writes)
        text += `  ${w.before === null ? 'created' : 'updated'} ${w.path} (${w.label})\n`;
      if (plan.dirs.length + plan.newKeyFiles.length + plan.writes.length === 0)
        text += '  everything was already current: nothing changed\n';
    }
    for (const c of report.commands) {
      text +=
        c.code === null
          ? `would run: ${c.argv.join(' ')}\n`
          : `ran: ${c.argv.join(' ')}${c.code === 0 ? '' : ` (exit ${c.code})`}\n`;
    }
    for (const w of report.warnings) text += formatFinding('warning', w.message, w.fix);
    for (const n of report.notes) text += formatFinding('note', n);
    io.out(text);
    return report.ok ? 0 : 1;
  } catch (err) {
    io.err(`linuxkitctl install: ${(err as Error).message}\n`);
    return 1;
  }
}
