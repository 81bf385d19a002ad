// What the registration files should say for an install layout and a config: the machines
// line, the SSH Host entry and the pinned known-hosts line. Pure, so install, doctor ("is the
// entry current?") and the daemon's drift repair all render the same text.
import type { DaemonConfig } from '../config/schema.js';
import { chooseControlPathName, type InstallLayout } from './install-layout.js';
import { renderMachinesLine } from './machines-entry.js';
import { renderKnownHostsLine, renderSshHostEntry } from './ssh-config.js';

export type RegistrationConfig = Pick<
  DaemonConfig,
  'sshPort' | 'sshUser' | 'systems' | 'maxJobs' | 'speedFactor' | 'supportedFeatures' | 'mode' | 'onDemand'
>;

/** The machines file's identity field. A path with spaces cannot be a field: '-' lets ssh use the alias's IdentityFile. */
export function machinesIdentityField(clientKey: string): string {
  return /\s|#/.test(clientKey) ? '-' : clientKey;
}

/** The machines block body: one line for the builder, ssh-ng through the alias. */
export function renderMachinesBody(
  layout: InstallLayout,
  config: RegistrationConfig,
  hostPublicKeyLine: string,
): string {
  return (
    renderMachinesLine({
      uri: `ssh-ng://${layout.alias}`,
      systems: config.systems,
      identityFile: machinesIdentityField(layout.keys.clientKey),
      maxJobs: config.maxJobs,
      speedFactor: config.speedFactor,
      // Only what is true of the guest: the config's list, which has no kvm unless asked for.
      supportedFeatures: config.supportedFeatures,
      mandatoryFeatures: [],
      hostPublicKeyLine,
    }) + '\n'
  );
}

/** The SSH drop-in block body; `controlPathName` null leaves connection sharing off. */
export function renderSshDropInBody(
  layout: InstallLayout,
  config: RegistrationConfig,
  controlPathName: string | null,
): string {
  return renderSshHostEntry({
    alias: layout.alias,
    port: config.sshPort,
    user: config.sshUser,
    identityFile: layout.keys.clientKey,
    knownHostsFile: layout.knownHostsFile,
    // On demand, ssh waits for the daemon to boot the VM: as long as the daemon holds a connection.
    ...(config.mode === 'on-demand'
      ? { connectTimeoutSec: Math.ceil(config.onDemand.connectTimeoutMs / 1000) }
      : {}),
    ...(controlPathName === null
      ? {}
      : { controlDir: layout.controlDir, controlPathName, controlPersist: '60s' }),
  });
}

export function renderKnownHosts(layout: InstallLayout, hostPublicKeyLine: string): string {
  return renderKnownHostsLine(layout.alias, hostPublicKeyLine);
}

/** The ControlPath name for this install: root connects in both kinds, the user too in a user install. */
export function controlPathNameFor(
  layout: InstallLayout,
  config: Pick<RegistrationConfig, 'sshUser'>,
): string | null {
  const local = layout.scope === 'system' ? ['root'] : [layout.user.name, 'root'];
  return chooseControlPathName(layout.controlDir, layout.platform, layout.scope, {
    local,
    remote: config.sshUser,
  });
}

export interface RegistrationTexts {
  machinesBody: string;
  sshDropInBody: string;
  knownHosts: string;
}

/** Everything the registration files should say now; the daemon's drift repair compares against this. */
export function renderRegistration(
  layout: InstallLayout,
  config: RegistrationConfig,
  hostPublicKeyLine: string,
): RegistrationTexts {
  return {
    machinesBody: renderMachinesBody(layout, config, hostPublicKeyLine),
    sshDropInBody: renderSshDropInBody(layout, config, controlPathNameFor(layout, config)),
    knownHosts: renderKnownHosts(layout, hostPublicKeyLine),
  };
}

export interface MachinesFieldDiff {
  field: string;
  expected: string;
  found: string;
}

const FIELD_NAMES = [
  'uri',
  'systems',
  'identity file',
  'max jobs',
  'speed factor',
  'supported features',
  'mandatory features',
  'host key',
];

/** Which fields of a machines line differ from the expected one, named for a message. */
export function diffMachinesLine(expected: string, found: string): MachinesFieldDiff[] {
  const e = expected.trim().split(/\s+/);
  const f = found.trim().split(/\s+/);
  const out: MachinesFieldDiff[] = [];
  for (let i = 0; i < Math.max(e.length, f.length, FIELD_NAMES.length); i++) {
    if ((e[i] ?? '') !== (f[i] ?? ''))
      out.push({ field: FIELD_NAMES[i] ?? `field ${i + 1}`, expected: e[i] ?? '', found: f[i] ?? '' });
  }
  return out;
}
