// What to put in a nix-darwin (or home-manager) configuration instead of the files install would
// write, for when that tool owns them as links into the Nix store: replacing its link makes the
// next `darwin-rebuild switch` abort on "Unexpected files in /etc", so install prints these.
import type { InstallLayout } from './install-layout.js';
import { machinesIdentityField, renderSshDropInBody, type RegistrationConfig } from './registration-files.js';

const nixString = (s: string) => JSON.stringify(s).replace(/\$\{/g, '\\${');
const nixList = (xs: string[]) => `[ ${xs.map(nixString).join(' ')} ]`;

/** A `nix.buildMachines` entry equal to our machines line; publicHostKey only once the key exists. */
export function renderNixBuildMachine(
  layout: InstallLayout,
  config: RegistrationConfig,
  hostPublicKeyLine: string | null,
): string {
  const identity = machinesIdentityField(layout.keys.clientKey);
  const lines = [
    'nix.buildMachines = [ {',
    `  hostName = ${nixString(layout.alias)};`,
    '  protocol = "ssh-ng";',
    `  systems = ${nixList(config.systems)};`,
    ...(identity === '-' ? [] : [`  sshKey = ${nixString(identity)};`]),
    `  maxJobs = ${config.maxJobs};`,
    `  speedFactor = ${config.speedFactor};`,
    `  supportedFeatures = ${nixList(config.supportedFeatures)};`,
    ...(hostPublicKeyLine === null
      ? []
      : [`  publicHostKey = ${nixString(Buffer.from(hostPublicKeyLine.trim() + '\n').toString('base64'))};`]),
    '} ];',
    'nix.distributedBuilds = true;',
  ];
  return lines.join('\n') + '\n';
}

/** The SSH Host entry as nix-darwin's `programs.ssh.extraConfig` (it writes the system ssh_config.d). */
export function renderNixSshExtraConfig(
  layout: InstallLayout,
  config: RegistrationConfig,
  controlPathName: string | null,
): string {
  const body = renderSshDropInBody(layout, config, controlPathName)
    .replace(/''/g, "'''")
    .replace(/\$\{/g, "''${");
  return `programs.ssh.extraConfig = ''\n${body.replace(/^/gm, '  ').replace(/\s+$/, '')}\n'';\n`;
}

/** `builders` through nix-darwin's settings, keeping what it had after our machines file. */
export function renderNixBuildersSetting(machinesFile: string, current: string): string {
  const value = current.trim() === '' ? `@${machinesFile}` : `@${machinesFile} ; ${current.trim()}`;
  return `nix.settings.builders = ${nixString(value)};\n`;
}
