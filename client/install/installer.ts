// `linuxkitctl install`: keys, the daemon's config, the Nix machines block, the SSH drop-in, the
// launchd job or systemd unit, and a manifest of all of it; then the service manager loads the
// daemon. Everything is planned first (so --dry-run and the permission check see the same
// writes), then applied.
import { ChangedMeanwhileError } from '../../daemon/fs/shared-file-rewrite.js';
import * as path from 'node:path';
import { findBuilders } from '../../daemon/config/builders.js';
import { parseConfig, type HostInfo } from '../../daemon/config/load.js';
import { STATE_LAYOUT } from '../../daemon/config/paths.js';
import type { DaemonConfig } from '../../daemon/config/schema.js';
import { builderKeyPaths, ensureBuilderKeys } from '../../daemon/keys/builder-keys.js';
import { renderLaunchdPlist, launchdJob } from '../../daemon/host-files/launchd-plist.js';
import {
  daemonCommandLine,
  daemonServiceSpec,
  type DaemonProgram,
} from '../../daemon/host-files/daemon-service.js';
import { versionedNodeProblem } from '../../daemon/host-files/node-path.js';
import type { CommandRunner } from './run-command.js';
import { runPaced, type Pacing } from './launchd-pacing.js';
import {
  installCommands,
  restartHint,
  serviceQueries,
  startHint,
  type Argv,
  type ServiceContext,
} from './service-commands.js';
import { renderSystemdUnit } from '../../daemon/host-files/systemd-unit.js';
import { installConfig } from './install-config.js';
import {
  applyWrites,
  chownToService,
  createDirs,
  missingDirs,
  pathExists,
  readTexts,
  unwritable,
  type Ownership,
} from './install-fs.js';
import {
  installLayout,
  SSH_DROPIN_SYSTEM_PATH,
  underRoot,
  type InstallLayout,
  type InstallScope,
  type ServiceUser,
} from '../../daemon/host-files/install-layout.js';
import { parseManifest, type InstallManifest } from '../../daemon/host-files/install-manifest.js';
import { planInstall, type DesiredFile, type InstallPlan, type PlannedDir } from './install-plan.js';
import { readManagedBlock } from '../../daemon/host-files/managed-block.js';
import { checkBuilders, discoverBuilders } from './nix-conf.js';
import {
  renderNixBuildMachine,
  renderNixSshExtraConfig,
} from '../../daemon/host-files/nix-darwin-snippets.js';
import { storeLinkOnPath, storeLinkTarget } from './store-links.js';
import {
  controlPathNameFor,
  renderKnownHosts,
  renderMachinesBody,
  renderSshDropInBody,
} from '../../daemon/host-files/registration-files.js';
import { checkSshInclude } from './ssh-include.js';
import { hostRefusals } from './host-refusals.js';
import { unifiedDiff } from './unified-diff.js';

export interface InstallRequest {
  scope: InstallScope;
  dryRun: boolean;
  /** Install under this directory instead of '/': nothing outside it changes, no service manager runs. */
  root: string | null;
  overrides: Partial<DaemonConfig>;
  /** A named builder (--builder NAME) beside the default one; null or absent: the default builder. */
  builder?: string | null;
}

export interface InstallEnvironment {
  host: HostInfo & { platform: 'darwin' | 'linux' };
  /** Who the daemon runs as: root for --system, the user for --user. */
  user: ServiceUser;
  /** Set when root installs for another user (sudo ... --user). */
  actingForUser?: string;
  /** The service user's XDG_STATE_HOME/XDG_CONFIG_HOME, when known (not under sudo). */
  xdg?: { XDG_STATE_HOME?: string; XDG_CONFIG_HOME?: string };
  processUid: number;
  program: DaemonProgram;
  /** Folders where the backends' tools (their descriptors' hostTools) were found; they lead the daemon's PATH. */
  toolDirs: string[];
  /** NIX_CONF_DIR and NIX_CONFIG of a real install (ignored under --root). */
  nixConfDir?: string;
  nixConfig?: string;
  runner: CommandRunner;
  /** Whether to call launchctl/systemctl; never under --root. */
  callServiceManager: boolean;
  sshKeygen?: string;
  /** launchctl's bootout/bootstrap pacing; tests pass a fake clock. */
  pacing?: Pacing;
}

export interface Finding {
  message: string;
  fix?: string;
}

export interface InstallReport {
  layout: InstallLayout;
  plan: InstallPlan;
  warnings: Finding[];
  notes: string[];
  /** The service manager commands run (or, with --dry-run, that would run). */
  commands: Array<{ argv: Argv; code: number | null; output: string }>;
  /** --dry-run: the folders, key files and diffs, ready to print. */
  dryRunText: string;
  ok: boolean;
}

export class InstallError extends Error {
  override readonly name = 'InstallError';
}

/** A stand-in host key for --dry-run before the real one exists: 32 zero bytes. */
const PLACEHOLDER_HOST_KEY = `ssh-ed25519 ${Buffer.concat([
  Buffer.from([0, 0, 0, 11]),
  Buffer.from('ssh-ed25519'),
  Buffer.from([0, 0, 0, 32]),
  Buffer.alloc(32),
]).toString('base64')} linuxkit-nix host`;

const mode = (m: number) => `0${m.toString(8)}`;

interface Prepared {
  layout: InstallLayout;
  config: DaemonConfig;
  configText: string;
  prior: InstallManifest | null;
  wantedDirs: PlannedDir[];
  controlPathName: string | null;
  serviceContext: ServiceContext;
}

async function prepare(req: InstallRequest, env: InstallEnvironment): Promise<Prepared> {
  const layout = installLayout({
    platform: env.host.platform,
    scope: req.scope,
    root: req.root,
    user: env.user,
    env: env.xdg,
    builder: req.builder ?? null,
  });
  const texts = await readTexts([layout.configPath, layout.manifestPath]);
  const configResult = installConfig(
    texts.get(layout.configPath) ?? null,
    req.overrides,
    layout.configPath,
    env.host,
  );
  const manifestText = texts.get(layout.manifestPath) ?? null;
  const prior = manifestText === null ? null : parseManifest(manifestText, layout.manifestPath);
  const controlPathName = controlPathNameFor(layout, configResult.config);
  const serviceOwned = req.scope === 'user' ? 'service' : 'root';
  const wantedDirs: PlannedDir[] = [
    { path: layout.stateDir, mode: 0o700, owner: 'service' },
    { path: layout.keys.dir, mode: 0o700, owner: 'service' },
    { path: layout.logDir, mode: 0o700, owner: 'service' },
    ...(controlPathName === null
      ? []
      : [{ path: layout.controlDir, mode: 0o700, owner: 'service' as const }]),
    { path: layout.nixConfDir, mode: 0o755, owner: 'root' },
    { path: path.dirname(layout.sshDropIn), mode: 0o755, owner: 'root' },
    { path: path.dirname(layout.service.file), mode: 0o755, owner: serviceOwned },
  ];
  return {
    layout,
    config: configResult.config,
    configText: configResult.text,
    prior,
    wantedDirs,
    controlPathName,
    serviceContext: { service: layout.service, actingForUser: env.actingForUser },
  };
}

function desiredFiles(p: Prepared, env: InstallEnvironment, hostPublicKeyLine: string): DesiredFile[] {
  const { layout, config } = p;
  const spec = daemonServiceSpec(layout, env.program, config, env.toolDirs);
  const serviceText =
    layout.service.manager === 'launchd'
      ? renderLaunchdPlist(launchdJob(layout.service.label, spec))
      : renderSystemdUnit(spec);
  const serviceOwner = layout.scope === 'user' ? 'service' : 'root';
  return [
    {
      kind: 'whole',
      path: layout.configPath,
      content: p.configText,
      mode: 0o644,
      owner: 'service',
      label: "the daemon's config",
    },
    {
      kind: 'whole',
      path: layout.knownHostsFile,
      content: renderKnownHosts(layout, hostPublicKeyLine),
      mode: 0o644,
      owner: 'service',
      label: 'pinned host key',
    },
    {
      kind: 'block',
      path: layout.machinesFile,
      name: layout.blockName,
      body: renderMachinesBody(layout, config, hostPublicKeyLine),
      mode: 0o644,
      owner: 'root',
      label: 'Nix machines file',
    },
    {
      kind: 'block',
      path: layout.sshDropIn,
      name: layout.blockName,
      body: renderSshDropInBody(layout, config, p.controlPathName),
      mode: 0o644,
      owner: 'root',
      label: 'SSH drop-in',
    },
    {
      kind: 'whole',
      path: layout.service.file,
      content: serviceText,
      mode: 0o644,
      owner: serviceOwner,
      label: layout.service.manager === 'launchd' ? 'launchd job' : 'systemd unit',
    },
  ];
}

/** `createdDirs`: the folders this run already made (the final plan, after keys exist). */
async function plan(
  p: Prepared,
  env: InstallEnvironment,
  hostKeyLine: string,
  missingKeyFiles: string[],
  createdDirs?: PlannedDir[],
): Promise<InstallPlan> {
  const desired = desiredFiles(p, env, hostKeyLine);
  const current = await readTexts([...desired.map((d) => d.path), p.layout.manifestPath]);
  const home = underRoot(p.layout.root, p.layout.user.home);
  const inHome = (dir: string) => p.layout.scope === 'user' && (dir === home || dir.startsWith(`${home}/`));
  const dirs = createdDirs ?? (await missingDirs(p.wantedDirs, (dir) => (inHome(dir) ? 'service' : 'root')));
  return planInstall({
    layout: p.layout,
    prior: p.prior,
    current,
    missingDirs: dirs,
    missingKeyFiles,
    desired,
  });
}

/** Other builders (config/builders.ts) whose config asks for the same SSH port: only one VM can listen on it. */
async function portClashes(layout: InstallLayout, config: DaemonConfig, host: HostInfo): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const other of await findBuilders(layout.baseStateDir, {
    config: STATE_LAYOUT.config,
    socket: STATE_LAYOUT.socket,
  })) {
    if (other.stateDir === layout.stateDir) continue;
    const file = path.join(other.stateDir, STATE_LAYOUT.config);
    const text = (await readTexts([file]).catch(() => new Map<string, string | null>())).get(file) ?? null;
    const parsed = text === null ? null : parseConfig(text, file, host);
    if (!parsed?.ok || parsed.config.sshPort !== config.sshPort) continue;
    const them = other.builder === null ? 'the default builder' : `builder ${other.builder}`;
    const me = layout.builder === null ? '' : ` --builder ${layout.builder}`;
    out.push({
      message: `${them} (${file}) uses SSH port ${config.sshPort} too: only one of the two VMs can listen on it`,
      fix: `give this one its own port: linuxkitctl install${me} --ssh-port N (a free port other than ${config.sshPort})`,
    });
  }
  return out;
}

/** Problems worth telling the user that install does not fix by itself (it never edits ssh_config or nix.conf). */
async function findings(
  p: Prepared,
  env: InstallEnvironment,
  machinesAfter: string | null,
): Promise<{ warnings: Finding[]; notes: string[] }> {
  const { layout, config } = p;
  const warnings: Finding[] = [];
  const notes: string[] = [];
  const texts = await readTexts([layout.sshConfig]);
  const include = checkSshInclude(texts.get(layout.sshConfig) ?? null, {
    dropInPath: SSH_DROPIN_SYSTEM_PATH,
    platform: layout.platform,
    sshConfigPath: layout.sshConfig,
  });
  if (!include.included) {
    warnings.push({
      message: include.problem ?? 'the SSH drop-in is not included',
      fix: `add this line at the top of ${layout.sshConfig} (before any Host or Match line):\n    ${include.fixLine}`,
    });
  }
  const { nixConfDir, builders, check } = await buildersCheck(p, env);
  const confFile = path.join(nixConfDir, 'nix.conf');
  if (!check.ok) warnings.push({ message: check.message, fix: check.fix });
  for (const problem of builders.problems) warnings.push({ message: `${confFile}: ${problem}` });

  warnings.push(...(await portClashes(layout, config, env.host)));
  if (config.supportedFeatures.includes('kvm')) {
    warnings.push({
      message:
        'supportedFeatures lists kvm: only true if the guest has /dev/kvm (nested virtualisation); Nix would send it builds that need KVM',
      fix: '`linuxkitctl doctor` checks the guest for /dev/kvm; remove kvm from supportedFeatures in the config if it has none',
    });
  }
  if (machinesAfter !== null) {
    const block = readManagedBlock(machinesAfter, layout.blockName) ?? '';
    const outside = machinesAfter.replace(block, '').split('\n');
    const dup = outside.findIndex((l) =>
      new RegExp(`^\\s*ssh(-ng)?://([^@\\s]+@)?${layout.alias}(\\s|$)`).test(l),
    );
    if (dup >= 0)
      warnings.push({
        message: `${layout.machinesFile} also names ${layout.alias} outside the managed block: "${outside[dup].trim()}"`,
        fix: 'remove that line; the managed block is kept current by install',
      });
  }
  if (p.controlPathName === null) {
    notes.push(
      `ssh connection sharing is off: a control socket in ${layout.controlDir} would exceed the socket path limit`,
    );
  }
  const versionedNode = versionedNodeProblem(env.program.node);
  if (versionedNode) warnings.push(versionedNode);
  if (!(await pathExists(env.program.mainJs))) {
    warnings.push({
      message: `${env.program.mainJs} does not exist, so the service cannot start`,
      fix: 'build the project first: npm run build',
    });
  }
  if (layout.platform === 'darwin' && layout.scope === 'user') {
    notes.push(
      `a LaunchAgent runs only while ${layout.user.name} is logged in at the Mac's screen (launchd's gui/${layout.user.uid} domain): builds from a logged-out or SSH-only Mac fail; for a builder that is always there: sudo linuxkitctl install --system`,
    );
  }
  if (layout.platform === 'linux' && layout.scope === 'user') {
    notes.push(
      `a systemd --user service runs while ${layout.user.name} is logged in; to keep the builder up without a session: loginctl enable-linger ${layout.user.name}`,
    );
  }
  return { warnings, notes };
}

async function buildersCheck(p: Prepared, env: InstallEnvironment) {
  const { layout } = p;
  const nixConfDir = layout.root === null ? (env.nixConfDir ?? layout.nixConfDir) : layout.nixConfDir;
  const builders = await discoverBuilders(nixConfDir, layout.root === null ? env.nixConfig : undefined, {
    storeLink: (f) => storeLinkTarget(f, layout.root),
  });
  const check = checkBuilders({
    setting: builders.builders,
    nixConfDir,
    machinesFile: layout.machinesFile,
    managedByNixTool: builders.managedByNixTool,
    editFile: builders.editFile,
  });
  return { nixConfDir, builders, check };
}

/**
 * Files nix-darwin or home-manager own as store links: install would replace the machines file
 * or write into a read-only store folder, and nix.conf cannot be edited to read our file. Each
 * refusal carries what to add to that tool's configuration instead.
 */
async function nixToolRefusals(
  p: Prepared,
  env: InstallEnvironment,
  hostPublicKeyLine: string | null,
): Promise<string[]> {
  const { layout, config } = p;
  const out: string[] = [];
  const machines = await storeLinkOnPath(
    layout.machinesFile,
    path.dirname(path.dirname(layout.machinesFile)),
    layout.root,
  );
  if (machines) {
    out.push(
      `${machines.path} is a link into the Nix store (${machines.target}): nix-darwin (nix.buildMachines, nix.linux-builder) or home-manager owns it, and replacing it would make its next switch fail. Add the builder there instead:\n` +
        indent(renderNixBuildMachine(layout, config, hostPublicKeyLine)),
    );
  }
  const dropIn = await storeLinkOnPath(
    layout.sshDropIn,
    path.dirname(path.dirname(layout.sshDropIn)),
    layout.root,
  );
  if (dropIn) {
    out.push(
      `${dropIn.path} is a link into the Nix store (${dropIn.target}): a Nix tool owns the SSH config there, and a file written into it would be lost or break its next switch. Add the Host entry there instead:\n` +
        indent(renderNixSshExtraConfig(layout, config, p.controlPathName)),
    );
  }
  const { check, builders } = await buildersCheck(p, env);
  if (!check.ok && builders.managedByNixTool) out.push(`${check.message}; ${check.fix}`);
  return out;
}

const indent = (text: string) => text.replace(/\s+$/, '').replace(/^/gm, '    ');

/** --dry-run output: folders, new keys, then a unified diff per file. */
export function renderDryRun(plan: InstallPlan, placeholderUsed: boolean): string {
  let out = '';
  for (const d of plan.dirs) out += `# create folder ${d.path} (mode ${mode(d.mode)})\n`;
  for (const k of plan.newKeyFiles) {
    out += `# create ${k} (${k.endsWith('.pub') ? 'public key, mode 0644' : 'ed25519 private key, mode 0600'}, made by ssh-keygen)\n`;
  }
  for (const w of plan.writes) {
    out +=
      w.before === null
        ? `# create ${w.path}: ${w.label} (mode ${mode(w.mode)})\n`
        : `# change ${w.path}: ${w.label}\n`;
    out += unifiedDiff(w.before, w.after, { before: w.path, after: w.path });
  }
  if (placeholderUsed) {
    const keyB64 = PLACEHOLDER_HOST_KEY.split(' ')[1];
    const lineB64 = Buffer.from(`${PLACEHOLDER_HOST_KEY}\n`).toString('base64');
    out = out.split(lineB64).join('<base64 of the new host public key>').split(keyB64).join('<new host key>');
  }
  return out;
}

/** Plans made and applied before install gives up on a file that keeps changing under it. */
const MAX_PLAN_ATTEMPTS = 5;

export async function install(req: InstallRequest, env: InstallEnvironment): Promise<InstallReport> {
  const p = await prepare(req, env);
  const { layout } = p;
  const keyPaths = builderKeyPaths(layout.keys.dir);
  const existing = await readTexts([
    keyPaths.clientKey,
    keyPaths.clientPublicKey,
    keyPaths.hostKey,
    keyPaths.hostPublicKey,
  ]);
  const missingKeyFiles = [...existing].filter(([, text]) => text === null).map(([file]) => file);
  const halfPair = [keyPaths.clientKey, keyPaths.hostKey].find(
    (k) => existing.get(k) !== null && existing.get(`${k}.pub`) === null,
  );
  if (halfPair)
    throw new InstallError(
      `key ${halfPair} has no public half ${halfPair}.pub: restore it, or delete the key to make a new pair; nothing was changed`,
    );
  const hostPub = existing.get(keyPaths.hostPublicKey);
  const refusals = [
    ...(await hostRefusals({ layout: p.layout, config: p.config, program: env.program, runner: env.runner })),
    ...(await nixToolRefusals(p, env, hostPub ? hostPub.trim() : null)),
  ];
  if (refusals.length > 0) throw new InstallError(`${refusals.join('\n')}\nNothing was changed.`);
  const trialKey = hostPub ? hostPub.trim() : PLACEHOLDER_HOST_KEY;
  // The trial plan renders everything before anything changes: a bad setting fails here.
  const trial = await plan(p, env, trialKey, missingKeyFiles);
  const machinesAfter = trial.writes.find((w) => w.path === layout.machinesFile)?.after ?? null;
  const { warnings, notes } = await findings(p, env, machinesAfter);
  const report: InstallReport = {
    layout,
    plan: trial,
    warnings,
    notes,
    commands: [],
    dryRunText: '',
    ok: true,
  };

  const useServiceManager = env.callServiceManager && req.root === null;
  const targets = [...trial.dirs.map((d) => d.path), ...trial.writes.map((w) => w.path), ...missingKeyFiles];
  const how =
    req.scope === 'system'
      ? 'sudo linuxkitctl install --system'
      : 'sudo linuxkitctl install --user (from your own account)';
  if (req.dryRun) {
    report.dryRunText = renderDryRun(trial, !hostPub);
    const denied = req.root === null ? await unwritable(targets) : [];
    if (denied.length > 0)
      notes.push(`this user may not write ${denied.join(', ')}; the real run needs: ${how}`);
    if (useServiceManager) {
      const state = await queryService(p.serviceContext, env.runner);
      const serviceFileChanged = trial.writes.some((w) => w.path === layout.service.file);
      for (const argv of installCommands(p.serviceContext, state, {
        serviceFileChanged,
        restartNeeded: missingKeyFiles.length > 0,
      })) {
        report.commands.push({ argv, code: null, output: '' });
      }
    }
    return report;
  }

  if (req.root === null) {
    const denied = await unwritable(targets);
    if (denied.length > 0) {
      throw new InstallError(
        `cannot write ${denied.join(', ')} as this user; nothing was changed. Run: ${how}`,
      );
    }
    if (!(await pathExists(env.program.mainJs))) {
      throw new InstallError(
        `${env.program.mainJs} does not exist: build the project first (npm run build); nothing was changed`,
      );
    }
  }

  const own: Ownership = {
    service:
      env.processUid === 0 && req.root === null && layout.user.uid !== 0
        ? { uid: layout.user.uid, gid: layout.user.gid }
        : null,
    processIsRoot: env.processUid === 0,
  };
  const createdDirs = await createDirs(trial.dirs, own);
  const keys = await ensureBuilderKeys(layout.keys.dir, { sshKeygen: env.sshKeygen });
  await chownToService(missingKeyFiles, own);
  // Now with the real host key; the folders made above are no longer missing but are ours.
  // Planned again with the real host key; and again if another program rewrote a file meanwhile
  // (the daemon's drift repair, a tool of the admin's): the plan is made from what is there now.
  let final: InstallPlan;
  for (let attempt = 1; ; attempt++) {
    final = await plan(
      p,
      env,
      keys.hostPublicKeyLine,
      missingKeyFiles,
      trial.dirs.filter((d) => createdDirs.includes(d.path)),
    );
    try {
      await applyWrites(final, own);
      break;
    } catch (err) {
      if (!(err instanceof ChangedMeanwhileError) || attempt >= MAX_PLAN_ATTEMPTS) throw err;
    }
  }
  report.plan = final;

  if (useServiceManager) {
    const state = await queryService(p.serviceContext, env.runner);
    const serviceFileChanged = final.writes.some((w) => w.path === layout.service.file);
    const restartNeeded = missingKeyFiles.length > 0;
    const commands = installCommands(p.serviceContext, state, { serviceFileChanged, restartNeeded });
    if (commands.length === 0) {
      // Nothing it reads at start changed; a new version of linuxkit-nix still needs a restart.
      notes.push(
        `the service keeps running as it was; after upgrading linuxkit-nix, restart it with: ${restartHint(p.serviceContext)}`,
      );
    }
    const exitTimeOutSec = daemonServiceSpec(layout, env.program, p.config, env.toolDirs).stopTimeoutSec;
    const paced = await runPaced(commands, env.runner, { exitTimeOutSec, pacing: env.pacing });
    report.commands.push(...paced.commands);
    notes.push(...paced.notes);
    if (paced.failure !== null) {
      report.ok = false;
      report.warnings.push({
        message: paced.failure,
        fix: `the files are installed; start the service by hand with: ${startHint(p.serviceContext)}`,
      });
    }
  } else if (req.root !== null) {
    notes.push(
      `--root: no service manager was called; to try the daemon from here: ${daemonCommandLine(env.program, layout)}`,
    );
  } else if (!env.callServiceManager) {
    notes.push(
      `--no-service: no service manager was called; run the daemon with: ${daemonCommandLine(env.program, layout)}`,
    );
  }
  return report;
}

export async function queryService(
  ctx: ServiceContext,
  runner: CommandRunner,
): Promise<{ loaded: boolean; enabled: boolean }> {
  const q = serviceQueries(ctx);
  const loaded = (await runner(q.loaded)).code === 0;
  const enabled = q.enabled === null ? loaded : (await runner(q.enabled)).code === 0;
  return { loaded, enabled };
}
