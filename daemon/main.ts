#!/usr/bin/env node
// linuxkitd: the resident daemon. launchd or systemd keeps it alive; it never daemonizes itself.
// Exit codes: 0 clean stop, 1 could not start (the message says why), 2 bad command line.
import { DAEMON_USAGE, parseDaemonArgs } from './config/flags.js';
import { daemonVersion, startDaemon, type RunningDaemon } from './daemon-app.js';

async function main(): Promise<number> {
  const parsed = parseDaemonArgs(process.argv.slice(2));
  if (!parsed.ok) {
    for (const e of parsed.errors) process.stderr.write(`linuxkitd: ${e.message}\n`);
    process.stderr.write('Run linuxkitd --help for the options.\n');
    return 2;
  }
  const { args } = parsed;
  if (args.help) {
    process.stdout.write(DAEMON_USAGE);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`linuxkitd ${await daemonVersion()}\n`);
    return 0;
  }
  process.title = 'linuxkitd';
  // Signal handlers go in before anything starts: adopting a VM or probing it happens during
  // startup, and a SIGTERM then must still power the VM off (or leave it) and exit cleanly, never
  // kill the daemon by the default action.
  let received: NodeJS.Signals | null = null;
  let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
    received ??= signal;
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  let onHangup = () => {}; // the config is read at startup anyway
  process.on('SIGHUP', () => onHangup());
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon(args);
  } catch (err) {
    process.stderr.write(`linuxkitd: ${(err as Error).message}\n`);
    return 1;
  }
  const { config, log } = { config: daemon.config, log: daemon.log };
  return new Promise<number>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      const stopVm = config().onSigterm === 'stop';
      log.info({ signal, stopVm }, 'signal received');
      // Stay within launchd's ExitTimeOut / systemd's TimeoutStopSec: the VM gets its grace, the
      // daemon a few seconds more, then it exits whatever happened.
      const hardExit = setTimeout(() => resolve(1), config().stopGraceMs + 8000);
      hardExit.unref();
      daemon.close({ stopVm }).then(
        () => resolve(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    onHangup = () => {
      log.info('SIGHUP: reloading the config');
      void daemon.reload();
    };
    if (received) shutdown(received);
    else onSignal = shutdown;
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`linuxkitd: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
