// The launchctl and systemctl command lines install, uninstall and doctor run, as pure functions
// of what is installed and what the service manager reported, so the sequences are tested
// without a service manager. Running them is service-runner.ts's job.
import type { ServiceLayout } from '../../daemon/host-files/install-layout.js';

export type Argv = string[];

export interface ServiceContext {
  service: ServiceLayout;
  /**
   * The service user's name when we act for them as root (sudo linuxkitctl install --user):
   * systemctl then needs --machine=<user>@ to reach their user manager.
   */
  actingForUser?: string;
}

/** What the service manager said before we change anything. */
export interface ServiceState {
  /** launchd: `launchctl print` found the job; systemd: the unit is active. */
  loaded: boolean;
  /** systemd only: `systemctl is-enabled` said enabled. launchd jobs load at boot from their folder. */
  enabled: boolean;
}

function systemctl(ctx: ServiceContext, ...args: string[]): Argv {
  if (ctx.service.manager !== 'systemd' || !ctx.service.userMode) return ['systemctl', ...args];
  return ctx.actingForUser
    ? ['systemctl', '--user', `--machine=${ctx.actingForUser}@`, ...args]
    : ['systemctl', '--user', ...args];
}

const target = (s: Extract<ServiceLayout, { manager: 'launchd' }>) => `${s.domain}/${s.label}`;

/** Commands that ask whether the service is loaded/active (exit 0: yes) and enabled. */
export function serviceQueries(ctx: ServiceContext): { loaded: Argv; enabled: Argv | null } {
  const s = ctx.service;
  if (s.manager === 'launchd') return { loaded: ['launchctl', 'print', target(s)], enabled: null };
  return {
    loaded: systemctl(ctx, 'is-active', '--quiet', s.unit),
    enabled: systemctl(ctx, 'is-enabled', '--quiet', s.unit),
  };
}

/**
 * After install wrote its files: load the job when it is not loaded; when the plist or unit
 * changed, load the new one; when only what the daemon reads at start changed (its keys),
 * restart it. Nothing changed and running: no commands, so a second install is a no-op.
 */
export function installCommands(
  ctx: ServiceContext,
  state: ServiceState,
  change: { serviceFileChanged: boolean; restartNeeded: boolean },
): Argv[] {
  const s = ctx.service;
  if (s.manager === 'launchd') {
    // launchd reads the plist only at bootstrap: a changed plist needs bootout + bootstrap.
    // `enable` first clears an earlier `launchctl disable`, which would make bootstrap fail.
    const load: Argv[] = [
      ['launchctl', 'enable', target(s)],
      ['launchctl', 'bootstrap', s.domain, s.file],
    ];
    if (!state.loaded) return load;
    if (change.serviceFileChanged) return [['launchctl', 'bootout', target(s)], ...load];
    if (change.restartNeeded) return [['launchctl', 'kickstart', '-k', target(s)]];
    return [];
  }
  const cmds: Argv[] = [];
  if (change.serviceFileChanged) cmds.push(systemctl(ctx, 'daemon-reload'));
  if (!state.enabled || !state.loaded) cmds.push(systemctl(ctx, 'enable', '--now', s.unit));
  if (state.loaded && (change.serviceFileChanged || change.restartNeeded))
    cmds.push(systemctl(ctx, 'restart', s.unit));
  return cmds;
}

/** Before uninstall removes files: stop and unload the daemon (it powers the VM off on SIGTERM). */
export function uninstallStopCommands(ctx: ServiceContext, state: ServiceState): Argv[] {
  const s = ctx.service;
  if (s.manager === 'launchd') return state.loaded ? [['launchctl', 'bootout', target(s)]] : [];
  return state.loaded || state.enabled ? [systemctl(ctx, 'disable', '--now', s.unit)] : [];
}

/** After uninstall removed the unit file: systemd forgets it. */
export function uninstallAfterCommands(ctx: ServiceContext, unitRemoved: boolean): Argv[] {
  return ctx.service.manager === 'systemd' && unitRemoved ? [systemctl(ctx, 'daemon-reload')] : [];
}

/** How a person would restart the daemon by hand, for messages. */
export function restartHint(ctx: ServiceContext): string {
  const s = ctx.service;
  return s.manager === 'launchd'
    ? `launchctl kickstart -k ${target(s)}`
    : systemctl(ctx, 'restart', s.unit).join(' ');
}

/** How a person would load and start the service by hand, for messages. */
export function startHint(ctx: ServiceContext): string {
  const s = ctx.service;
  if (s.manager === 'launchd') return `launchctl bootstrap ${s.domain} '${s.file}'`;
  return systemctl(ctx, 'enable', '--now', s.unit).join(' ');
}
