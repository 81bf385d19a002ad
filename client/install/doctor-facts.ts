// Gathers what `linuxkitctl doctor` judges: the service manager's view, the daemon's status,
// ssh's resolution of the alias, one SSH session in the guest, the machines file, Nix's
// `builders`, and the keys. Every gatherer reports failure as a fact instead of throwing;
// doctor-checks.ts (beside this file) turns the facts into checks.
import { readFile, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { ApiError, DaemonUnreachableError, LinuxkitClient } from '../api-client.js';
import { BackendChoiceError, chooseBackend, missingTools } from '../../daemon/backends/choose-backend.js';
import { findBackend } from '../../daemon/backends/backend-list.js';
import { loadConfigFile, defaultConfig, type HostInfo } from '../../daemon/config/load.js';
import type { HostFacts } from '../../daemon/host/host-facts.js';
import { STATE_LAYOUT } from '../../daemon/config/paths.js';
import type { DaemonConfig } from '../../daemon/config/schema.js';
import {
  GUEST_REPORT_SCRIPT,
  parseSshG,
  type BackendFacts,
  type DoctorFacts,
  type GuestFacts,
} from './doctor-checks.js';
import { SSH_DROPIN_SYSTEM_PATH, type InstallLayout } from '../../daemon/host-files/install-layout.js';
import { readManagedBlock } from '../../daemon/host-files/managed-block.js';
import { buildersFromShowConfig, discoverBuilders } from './nix-conf.js';
import { storeLinkTarget } from './store-links.js';
import { renderMachinesBody } from '../../daemon/host-files/registration-files.js';
import { checkSshInclude } from './ssh-include.js';
import { daemonCommandLine, type DaemonProgram } from '../../daemon/host-files/daemon-service.js';
import type { CommandRunner } from './run-command.js';
import type { ServiceProgramFacts } from './doctor-host-checks.js';
import { parseLaunchdPlist } from '../../daemon/host-files/launchd-plist.js';
import { parseSystemdUnit } from '../../daemon/host-files/systemd-unit.js';
import { isExecutableFile } from '../../daemon/host-files/node-path.js';
import { gatherSshPortFacts } from './ssh-port-check.js';
import { serviceQueries, startHint, type ServiceContext } from './service-commands.js';

export interface GatherInput {
  layout: InstallLayout;
  manifestFound: boolean;
  actingForUser?: string;
  processUid: number;
  processUser: string;
  host: HostInfo;
  /** The machine's facts (real architecture, kern.hv_support, /dev/kvm, tools on PATH). */
  hostFacts: HostFacts;
  program: DaemonProgram;
  runner: CommandRunner;
  env: NodeJS.ProcessEnv;
  /** How long the daemon and the guest get to answer. */
  timeoutMs?: number;
}

const errText = (err: unknown) => (err as Error).message;

async function readOrNull(file: string): Promise<{ text: string | null; error?: string }> {
  try {
    return { text: await readFile(file, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { text: null };
    return { text: null, error: errText(err) };
  }
}

async function serviceFacts(input: GatherInput): Promise<DoctorFacts['service']> {
  if (input.layout.root !== null) return { queried: false, reason: 'under --root' };
  const ctx: ServiceContext = { service: input.layout.service, actingForUser: input.actingForUser };
  const q = serviceQueries(ctx).loaded;
  const result = await input.runner(q, { timeoutMs: 10_000 });
  const sudo = input.layout.scope === 'system' ? 'sudo ' : '';
  const startCommand = `${sudo}${startHint(ctx)} (or run linuxkitctl install again)`;
  const output = (result.stderr || result.stdout).trim().split('\n').slice(0, 3).join(' ');
  return {
    queried: true,
    loaded: result.code === 0,
    command: q.join(' '),
    output: result.code === 0 ? '' : output || `exit ${result.code}`,
    startCommand,
  };
}

async function daemonFacts(socketPath: string, timeoutMs: number): Promise<DoctorFacts['daemon']> {
  try {
    const s = await new LinuxkitClient({ socketPath, timeoutMs }).status();
    return {
      ok: true,
      state: s.state,
      healthy: s.healthy,
      probeError: s.probe.error,
      arch: s.arch,
      accel: s.accel,
      vmPid: s.vm?.pid ?? null,
    };
  } catch (err) {
    if (err instanceof DaemonUnreachableError)
      return {
        ok: false,
        code: err.code,
        message: err.message.replace(/^linuxkitd is not reachable at \S+: /, ''),
      };
    if (err instanceof ApiError) return { ok: false, code: err.error, message: err.message };
    return { ok: false, code: 'ERROR', message: errText(err) };
  }
}

async function sshFacts(input: GatherInput): Promise<DoctorFacts['ssh']> {
  const { layout } = input;
  // Under --root only the drop-in there counts; ssh -F reads that one file instead of the system's.
  const argv =
    layout.root === null ? ['ssh', '-G', layout.alias] : ['ssh', '-G', '-F', layout.sshDropIn, layout.alias];
  const command = argv.join(' ');
  const result = await input.runner(argv, { timeoutMs: 10_000 });
  if (result.code !== 0)
    return { command, ok: false, message: result.stderr.trim() || `exit ${result.code}` };
  return { command, ok: true, values: parseSshG(result.stdout) };
}

async function guestFacts(
  layout: InstallLayout,
  config: DaemonConfig,
  timeoutMs: number,
): Promise<GuestFacts> {
  let privateKey: Buffer;
  let hostPublicKeyLine: string;
  try {
    privateKey = await readFile(layout.keys.clientKey);
    hostPublicKeyLine = (await readFile(layout.keys.hostPublicKey, 'utf8')).trim();
  } catch (err) {
    return { ok: false, kind: 'no-keys', message: `cannot read the keys: ${errText(err)}` };
  }
  // ssh2 loads only here, when doctor really connects.
  const { runGuestCommand, HostKeyMismatchError } = await import('../../daemon/probe/guest-ssh.js');
  const before = Date.now() / 1000;
  try {
    const r = await runGuestCommand(
      { host: '127.0.0.1', port: config.sshPort, username: config.sshUser, privateKey, hostPublicKeyLine },
      GUEST_REPORT_SCRIPT,
      { deadlineMs: timeoutMs },
    );
    const after = Date.now() / 1000;
    if (r.code !== 0 && !r.stdout.includes('clock '))
      return {
        ok: false,
        kind: 'unreachable',
        message: `the guest script failed (exit ${r.code}): ${r.stderr.trim()}`,
      };
    return { ok: true, output: r.stdout, hostSecondsBefore: before, hostSecondsAfter: after };
  } catch (err) {
    if (err instanceof HostKeyMismatchError)
      return { ok: false, kind: 'host-key-mismatch', message: err.message };
    return { ok: false, kind: 'unreachable', message: errText(err) };
  }
}

/** The program the installed launchd job or systemd unit runs, read back from the file. */
async function serviceProgramFacts(layout: InstallLayout): Promise<ServiceProgramFacts> {
  const { file } = layout.service;
  const manager = layout.service.manager;
  let argv: string[];
  try {
    const text = await readFile(file, 'utf8');
    argv =
      manager === 'launchd'
        ? parseLaunchdPlist(text, file).ProgramArguments
        : parseSystemdUnit(text).execStart;
  } catch (err) {
    return {
      file,
      manager,
      ok: false,
      error: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : errText(err),
    };
  }
  const resolved = await Promise.all(argv.slice(0, 2).map((p) => realpath(p).catch(() => p)));
  return { file, manager, ok: true, argv, nodeExecutable: isExecutableFile(argv[0] ?? ''), resolved };
}

function hostVirtFacts(input: GatherInput): DoctorFacts['hostVirt'] {
  const h = input.hostFacts;
  return { platform: input.layout.platform, arch: h.machineArch, hvSupport: h.hvSupport, rosetta: h.rosetta };
}

/** The daemon's own backend choice, made here from the install's config and this host's facts. */
export function backendFacts(
  config: Pick<DaemonConfig, 'backend' | 'accel' | 'arch'>,
  host: HostFacts,
): BackendFacts {
  try {
    const choice = chooseBackend(config, host);
    const d = findBackend(choice.backend)!;
    return {
      ok: true,
      ...choice,
      missingTools: missingTools(d, config.arch, host),
      installHint: d.installHint,
    };
  } catch (err) {
    if (err instanceof BackendChoiceError) return { ok: false, message: err.message };
    throw err;
  }
}

async function buildersFacts(input: GatherInput, nixConfDir: string): Promise<DoctorFacts['builders']> {
  // The same file discovery as install (nix-darwin's store link, Determinate's nix.custom.conf),
  // so the fix names the file a person should really edit.
  const files = await discoverBuilders(
    nixConfDir,
    input.layout.root === null ? input.env.NIX_CONFIG : undefined,
    { storeLink: (f) => storeLinkTarget(f, input.layout.root) },
  );
  const fromFiles = {
    setting: files.builders,
    managedByNixTool: files.managedByNixTool,
    editFile: files.editFile,
    problems: files.problems,
  };
  if (input.layout.root !== null) return fromFiles;
  // The effective value, as Nix itself computes it (NIX_CONF_DIR, includes, NIX_CONFIG...).
  for (const sub of [['config', 'show'], ['show-config']]) {
    const r = await input.runner(['nix', '--extra-experimental-features', 'nix-command', ...sub], {
      timeoutMs: 20_000,
    });
    const value = r.code === 0 ? buildersFromShowConfig(r.stdout) : null;
    if (value === null) continue;
    // Nix agrees with the files: keep the file and line they name.
    if (files.builders?.value === value) return fromFiles;
    return { ...fromFiles, setting: { value, source: `nix ${sub.join(' ')}` }, problems: [] };
  }
  return fromFiles;
}

async function keyFacts(files: string[]): Promise<DoctorFacts['keys']> {
  return Promise.all(
    files.map(async (p) => {
      try {
        const st = await stat(p);
        return { path: p, mode: st.mode & 0o7777, uid: st.uid };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return { path: p, mode: null, uid: null, error: code === 'ENOENT' ? 'missing' : errText(err) };
      }
    }),
  );
}

export async function gatherDoctorFacts(input: GatherInput): Promise<DoctorFacts> {
  const { layout } = input;
  const timeoutMs = input.timeoutMs ?? 10_000;
  const loaded = await loadConfigFile(layout.configPath, input.host);
  const config = loaded.ok ? loaded.config : defaultConfig(input.host);
  const configProblem = loaded.ok ? undefined : loaded.errors.map((e) => e.message).join('; ');
  const nixConfDir = layout.root === null ? (input.env.NIX_CONF_DIR ?? layout.nixConfDir) : layout.nixConfDir;

  const hostPub = await readOrNull(layout.keys.hostPublicKey);
  const machines = await readOrNull(layout.machinesFile);
  let block: string | null = null;
  let machinesError = machines.error;
  try {
    block = machines.text === null ? null : readManagedBlock(machines.text, layout.blockName);
  } catch (err) {
    machinesError = errText(err);
  }
  const sshConfig = layout.root === null ? await readOrNull(layout.sshConfig) : null;

  const [service, daemon, ssh, guest, builders, keys, serviceProgram] = await Promise.all([
    serviceFacts(input),
    daemonFacts(layout.socketPath, timeoutMs),
    sshFacts(input),
    guestFacts(layout, config, timeoutMs),
    buildersFacts(input, nixConfDir),
    keyFacts([layout.keys.clientKey, layout.keys.hostKey]),
    serviceProgramFacts(layout),
  ]);
  // After the guest session: the port is probed once nothing of doctor's own uses it.
  const sshPort = await gatherSshPortFacts({
    port: config.sshPort,
    stateDir: layout.stateDir,
    configPath: layout.configPath,
    builder: layout.builder,
    runner: input.runner,
    reportedVmPid: daemon.ok ? daemon.vmPid : null,
  });
  const underRoot = layout.root !== null;
  return {
    install: { manifestPath: layout.manifestPath, found: input.manifestFound, configProblem },
    underRoot,
    service,
    daemon,
    hostVirt: hostVirtFacts(input),
    backend: backendFacts(config, input.hostFacts),
    socketPath: layout.socketPath,
    daemonLog: path.join(layout.stateDir, STATE_LAYOUT.daemonLog),
    daemonStartHint: underRoot
      ? daemonCommandLine(input.program, layout)
      : 'linuxkitctl install (it loads the service), then linuxkitctl start',
    ssh,
    sshInclude: sshConfig
      ? checkSshInclude(sshConfig.text, {
          dropInPath: SSH_DROPIN_SYSTEM_PATH,
          platform: layout.platform,
          sshConfigPath: layout.sshConfig,
        })
      : null,
    expected: {
      alias: layout.alias,
      port: config.sshPort,
      user: config.sshUser,
      identityFile: layout.keys.clientKey,
      sshDropIn: layout.sshDropIn,
      machinesFile: layout.machinesFile,
      machinesLine:
        hostPub.text === null ? null : renderMachinesBody(layout, config, hostPub.text.trim()).trim(),
      clientKey: layout.keys.clientKey,
      hostKey: layout.keys.hostKey,
      keyOwner: underRoot
        ? { uid: input.processUid, name: input.processUser }
        : { uid: layout.user.uid, name: layout.user.name },
      minFreeMiB: config.gc.minFreeMiB,
      diskGiB: config.diskGiB,
      supportedFeatures: config.supportedFeatures,
      nixConfDir,
      builder: layout.builder,
    },
    guest,
    machines: { text: machines.text, block, error: machinesError },
    builders,
    keys,
    host: { platform: layout.platform, home: layout.user.home, serviceProgram, sshPort },
  };
}
