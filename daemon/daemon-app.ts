// linuxkitd put together: config, lock, logs, keys, backend, supervisor, API, config watcher.
// `startDaemon` returns a running daemon that `close()` shuts down; main.ts adds the process
// concerns (argv, signals, exit codes).
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Backend } from './backend.js';
import { buildApiServer, listenOnUnixSocket } from './api/server.js';
import { AccelFallback } from './backends/accel-fallback.js';
import { chooseBackend, type BackendChoice } from './backends/choose-backend.js';
import { allHostTools, findBackend } from './backends/backend-list.js';
import { currentHostFacts } from './host/host-facts.js';
import type { DaemonArgs } from './config/flags.js';
import { applyOverrides, defaultConfig, loadConfigFile } from './config/load.js';
import { ensureConfigFile, resolveDaemonPaths, type DaemonPaths } from './config/paths.js';
import type { ConfigError, DaemonConfig } from './config/schema.js';
import { ConfigWatcher } from './config/watch.js';
import { writeJsonAtomic } from './fs/atomic-write.js';
import { ensureBuilderKeys, type BuilderKeys } from './keys/builder-keys.js';
import { createDaemonLogger } from './logging/logger.js';
import { tailRotatedLog } from './logging/rotating-file.js';
import { GuestLink } from './probe/guest-link.js';
import { probeGuest } from './probe/readiness-probe.js';
import { runGuestCommand, type GuestSshTarget } from './probe/guest-ssh.js';
import {
  GuestMaintenance,
  MAX_CLOCK_SKEW_MS,
  maintenanceIntervalMs,
} from './maintenance/guest-maintenance.js';
import { startDriftWatcher } from './drift/drift-watcher.js';
import { INSTALL_MANIFEST_NAME } from './host-files/install-layout.js';
import { policyFromSettings } from './reconciler/types.js';
import { latestConsoleLog, tailLines } from './state/console-logs.js';
import { fileStore } from './state/daemon-store.js';
import { acquireInstanceLock, type InstanceLock } from './state/instance-lock.js';
import { Supervisor } from './supervisor/supervisor.js';
import { SshEndpoint } from './on-demand/ssh-endpoint.js';
import { buildVmSpec } from './vm-spec.js';
import { projectRoot } from './project-root.js';

export class DaemonStartError extends Error {
  override readonly name = 'DaemonStartError';
}

export interface RunningDaemon {
  paths: DaemonPaths;
  supervisor: Supervisor;
  api: FastifyInstance;
  log: Logger;
  config(): DaemonConfig;
  /** Reloads the config file now (SIGHUP). */
  reload(): Promise<void>;
  /** Stops serving; stops the VM when `stopVm`, else leaves it for the next daemon to adopt. */
  close(opts: { stopVm: boolean }): Promise<void>;
}

function formatErrors(errors: ConfigError[]): string {
  return errors.map((e) => `${e.key}: ${e.message}`).join('; ');
}

export async function daemonVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The file config, or the last good one when the file is broken, or the defaults on a first start. */
async function loadStartupConfig(
  paths: DaemonPaths,
  lastGoodPath: string,
  overrides: Partial<DaemonConfig>,
): Promise<{ config: DaemonConfig; fileError: string | null }> {
  let fileConfig: DaemonConfig;
  let fileError: string | null = null;
  const exists = await access(paths.configPath).then(
    () => true,
    () => false,
  );
  if (!exists) {
    if (paths.configExplicit)
      throw new DaemonStartError(`config file ${paths.configPath} (from --config) does not exist`);
    fileConfig = defaultConfig();
    await ensureConfigFile(paths.configPath, fileConfig);
  } else {
    const loaded = await loadConfigFile(paths.configPath);
    if (loaded.ok) fileConfig = loaded.config;
    else {
      fileError = `config file ${paths.configPath} is invalid: ${formatErrors(loaded.errors)}`;
      const lastGood = await loadConfigFile(lastGoodPath);
      if (!lastGood.ok)
        throw new DaemonStartError(`${fileError} (and there is no last good config to fall back on)`);
      fileConfig = lastGood.config;
    }
  }
  const effective = applyOverrides(fileConfig, overrides);
  if (!effective.ok) throw new DaemonStartError(`invalid settings: ${formatErrors(effective.errors)}`);
  return { config: effective.config, fileError };
}

export async function startDaemon(
  args: DaemonArgs,
  opts: { foreground?: boolean } = {},
): Promise<RunningDaemon> {
  const paths = resolveDaemonPaths(args.paths);
  await mkdir(paths.stateDir, { recursive: true, mode: 0o700 });
  await mkdir(join(paths.stateDir, 'log'), { recursive: true, mode: 0o700 });
  const lock: InstanceLock = await acquireInstanceLock(paths.lock, paths.stateDir);
  let log: Logger | undefined;
  try {
    log = createDaemonLogger({ file: paths.daemonLog, foreground: opts.foreground ?? args.foreground });
    const lastGoodPath = join(paths.stateDir, 'config.last-good.json');
    const startup = await loadStartupConfig(paths, lastGoodPath, args.overrides);
    let config = startup.config;
    await writeJsonAtomic(lastGoodPath, config, { mode: 0o600 });
    const version = await daemonVersion();
    const keys: BuilderKeys = await ensureBuilderKeys(paths.keysDir);
    let facts = currentHostFacts(allHostTools());
    let choice: BackendChoice = chooseBackend(config, facts);
    const backend: Backend = await findBackend(choice.backend)!.create({
      log: log.child({ backend: choice.backend }),
    });
    const imageCacheDir = process.env.LINUXKIT_IMAGE_CACHE ?? paths.imageDir;
    const privateKey = await readFile(keys.clientKey);
    // The current VM's forwarded port (in on-demand mode not the user's sshPort, which the
    // daemon's endpoint holds).
    const target = (): GuestSshTarget => ({
      host: '127.0.0.1',
      port: supervisor.guestSshPort() ?? config.sshPort,
      username: config.sshUser,
      privateKey,
      hostPublicKeyLine: keys.hostPublicKeyLine,
    });
    const daemonLog = log;
    // The liveness check's kept SSH connection to the current VM.
    const link = new GuestLink(target);

    const supervisor = new Supervisor({
      backend,
      buildSpec: (_bootId, o) =>
        buildVmSpec(
          config,
          {
            stateDir: paths.stateDir,
            consoleDir: paths.consoleDir,
            imageCacheDir,
            keys,
            accel: choice.accel,
            kernelForm: findBackend(choice.backend)?.kernelForm[config.arch],
            log: (msg) => daemonLog.info(msg),
          },
          o,
        ),
      probe: (check) => probeGuest(target(), check, { deadlineMs: config.probe.timeoutMs, link }),
      store: fileStore(paths),
      policy: () => policyFromSettings(config),
      demand: () => ({ mode: config.mode, idleStopAfterMs: config.onDemand.idleStopAfterMs }),
      info: () => ({
        backend: choice.backend,
        backendReason: choice.reason,
        accel: choice.accel,
        arch: config.arch,
        sshPort: config.sshPort,
        configPath: paths.configPath,
        stateDir: paths.stateDir,
        version,
      }),
      logs: async (source, lines) => {
        if (source === 'daemon') return tailRotatedLog(paths.daemonLog, lines);
        const file = await latestConsoleLog(paths.consoleDir);
        return file ? tailLines(file, lines) : [];
      },
      log,
    });
    const endpoint = new SshEndpoint({
      connectTimeoutMs: () => config.onDemand.connectTimeoutMs,
      now: () => Date.now(),
      listener: {
        connection: (by) => supervisor.connectionArrived(by),
        changed: () => supervisor.connectionsChanged(),
        heldClosed: (n, reason) => supervisor.heldConnectionsClosed(n, reason),
        listenProblem: (message) =>
          message === null
            ? supervisor.clearError('ssh-endpoint')
            : supervisor.reportError('ssh-endpoint', message),
      },
    });
    const endpointPort = (c: DaemonConfig) => (c.mode === 'on-demand' ? c.sshPort : null);
    supervisor.setEndpoint(endpoint);
    // Before the API listens: status answers from the saved step memory (`failed`, a backoff) at once.
    await supervisor.load();
    if (startup.fileError) {
      supervisor.reportError('config', `${startup.fileError}; running on the last good config`);
      log.error({ configPath: paths.configPath }, startup.fileError);
    }

    const watcher = new ConfigWatcher({ path: paths.configPath, initial: config, overrides: args.overrides });
    watcher.on('change', ({ config: next, diff }) => {
      try {
        const nextChoice = chooseBackend(next, facts);
        if (nextChoice.backend !== choice.backend) {
          throw new Error(
            `changing the backend (${choice.backend} → ${nextChoice.backend}) needs a daemon restart`,
          );
        }
        choice = nextChoice;
      } catch (err) {
        supervisor.reportError('config', `config change not applied: ${(err as Error).message}`);
        daemonLog.error({ err }, 'config change not applied');
        return;
      }
      config = next;
      void endpoint.listenOn(endpointPort(config));
      void writeJsonAtomic(lastGoodPath, config, { mode: 0o600 }).catch((err) =>
        daemonLog.error({ err }, 'could not save the last good config'),
      );
      supervisor.clearError('config');
      daemonLog.info({ restart: diff.restart, keys: diff.keys, live: diff.live }, 'config changed');
      supervisor.configChanged({ needsRestart: diff.restart, keys: diff.keys });
    });
    watcher.on('invalid', ({ errors }) => {
      const message = `config file ${paths.configPath} is invalid, keeping the last good config: ${formatErrors(errors)}`;
      supervisor.reportError('config', message);
      daemonLog.error({ errors }, message);
    });
    watcher.on('recovered', () => supervisor.clearError('config'));
    watcher.on('error', (err) => daemonLog.error({ err }, 'config watcher failed'));
    await watcher.start();

    const api = buildApiServer(supervisor, { logger: log });
    await listenOnUnixSocket(api, paths.socketPath);
    log.info(
      {
        socket: paths.socketPath,
        stateDir: paths.stateDir,
        backend: choice.backend,
        accel: choice.accel,
        reason: choice.reason,
        version,
      },
      'linuxkitd started',
    );

    // Store garbage collection and clock correction in the healthy guest; subscribed before init()
    // so that an adopted VM found healthy there gets its first pass soon.
    const maintenance = new GuestMaintenance({
      host: supervisor,
      run: (command, o) => runGuestCommand(target(), command, o),
      settings: () => ({
        intervalMs: maintenanceIntervalMs(config.probe),
        gc: config.gc,
        maxClockSkewMs: MAX_CLOCK_SKEW_MS,
        commandTimeoutMs: config.probe.timeoutMs,
      }),
      log: log.child({ component: 'maintenance' }),
    });
    maintenance.start();
    // Keeps what linuxkitctl install registered (machines entry, SSH drop-in, pinned key) in place.
    const registration = await startDriftWatcher({
      manifestPath: join(paths.stateDir, INSTALL_MANIFEST_NAME),
      hostPublicKeyLine: keys.hostPublicKeyLine,
      config: () => config,
      host: supervisor,
      log: log.child({ component: 'registration' }),
    });
    // accel auto: a hardware accelerator that cannot run the guest (an error, or a silent boot) is
    // dropped for this daemon's life, and the VM started again with the next choice (tcg).
    const fallback = new AccelFallback({
      current: () => ({ accel: choice.accel, auto: config.accel === 'auto' }),
      consoleBytes: async () => {
        const file = supervisor.currentConsoleLog();
        return file === null
          ? null
          : stat(file).then(
              (s) => s.size,
              () => 0,
            );
      },
      failed: (accel, reason) => {
        if (accel === 'tcg') return;
        facts = { ...facts, failedAccels: { ...facts.failedAccels, [accel]: reason } };
        choice = chooseBackend(config, facts);
        const message = `${accel} could not run the guest (${reason}): using ${choice.accel} from now on`;
        daemonLog.warn({ accel, reason, now: choice.accel }, message);
        supervisor.reportEvent('accel-fallback', message, { from: accel, to: choice.accel, reason });
        supervisor.configChanged({ needsRestart: true, keys: ['accel'] });
      },
    });
    supervisor.events.on('event', (e) => fallback.observe(e));

    // Listening before the first step: a connection that comes while the VM is off is held.
    await endpoint.listenOn(endpointPort(config));
    await supervisor.init();

    let closing: Promise<void> | null = null;
    return {
      paths,
      supervisor,
      api,
      log,
      config: () => config,
      reload: async () => {
        await watcher.reload();
      },
      close: (o) =>
        (closing ??= (async () => {
          daemonLog.info({ stopVm: o.stopVm }, 'linuxkitd shutting down');
          await watcher.close();
          await registration.close();
          await maintenance.stop();
          await api.close();
          fallback.cancel();
          await endpoint.close();
          await supervisor.shutdown({ stopVm: o.stopVm });
          link.close();
          await lock.release();
          daemonLog.info('linuxkitd stopped');
          daemonLog.flush();
        })()),
    };
  } catch (err) {
    log?.error({ err }, 'linuxkitd could not start');
    log?.flush();
    await lock.release();
    throw err;
  }
}
