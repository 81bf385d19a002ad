#!/usr/bin/env node
// linuxkitctl: the thin CLI over linuxkitd's API. It imports nothing but node: modules and the
// client, so it starts about as fast as node itself.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { parseArgs } from 'node:util';
import { ApiError, DaemonUnreachableError, LinuxkitClient, type LogSource } from './api-client.js';
import { followLogs } from './follow.js';
import {
  formatAccepted,
  formatDiskReset,
  formatEvent,
  formatHealth,
  formatStatus,
  formatStatusAll,
  type BuilderStatusEntry,
} from './format.js';
import { defaultSocketPath, resolveSocketPath } from './socket-path.js';
import { waitUntilHealthy } from './wait.js';
import { progressReporter } from './wait-progress.js';

const EXIT = { ok: 0, error: 1, unreachable: 3, unhealthy: 4 } as const;

class UsageError extends Error {}

const OPTIONS = {
  socket: { type: 'string' },
  builder: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  source: { type: 'string' },
  lines: { type: 'string', short: 'n' },
  follow: { type: 'boolean', short: 'f' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;
type OptionName = keyof typeof OPTIONS;
type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

/** The options each command takes besides the global --socket, --builder and --help. */
const COMMANDS: Record<string, OptionName[]> = {
  status: ['json', 'all'],
  health: ['json'],
  start: ['json', 'wait', 'timeout'],
  stop: ['json'],
  restart: ['json', 'wait', 'timeout'],
  logs: ['json', 'source', 'lines', 'follow'],
  events: ['json'],
  disk: ['json'],
  version: ['json'],
  help: [],
};

function usage(socketPath: string): string {
  return `linuxkitctl: control the linuxkit-nix builder daemon (linuxkitd)

Usage: linuxkitctl [--socket PATH | --builder NAME] <command> [options]

Commands:
  status [--json] [--all]          Builder and daemon status (exit 4 when not healthy); --all: every
                                   builder of this user (or of root), the default one and each
                                   --builder NAME one (exit 4 when any is not healthy)
  health [--json]                  Whether the builder can take builds now (exit 4 when not)
  start [--wait] [--timeout S]     Start the builder; --wait returns once it is healthy
  stop                             Stop the builder (the daemon keeps running)
  restart [--wait] [--timeout S]   Replace the builder VM; --wait returns once a new VM is healthy
  logs [--source console|daemon] [--lines N] [-f]
                                   Last N lines (default 200) of the guest console or of the
                                   daemon's log (default); -f keeps printing new lines
  events [--json]                  Print state events as they happen, until interrupted
  disk reset [--json]              Start the store over: remove the store disk (diskGiB > 0); the
                                   next start formats a new one. Only while the builder is stopped
  version                          Versions of linuxkitctl and, when reachable, linuxkitd
  install [--system|--user] [--builder NAME] [--dry-run] [--root DIR] [settings]
                                   Register the builder with Nix and the service manager, and start it
  uninstall [--builder NAME] [--dry-run] [--root DIR]
                                   Remove exactly what install added, and stop the service
  doctor [--builder NAME] [--json] [--root DIR]
                                   Check every link from Nix to the builder, with a fix for each failure
  image build|status|prune         Build the guest image ahead of the first start, list the
                                   cached images, remove old ones (linuxkitctl image --help)
  help                             This text (install, uninstall, doctor, image: <command> --help)

Options:
  --socket PATH   The daemon's socket (env LINUXKIT_SOCKET, or daemon.sock in
                  LINUXKIT_NIX_STATE_DIR); here: ${socketPath}
  --builder NAME  The builder installed with install --builder NAME (its socket is
                  <state dir>/builders/NAME/daemon.sock); instead of --socket
  --json          Print the API's JSON instead of text
  --timeout S     How long --wait waits, in seconds (default 120)
  -V, --version   Print linuxkitctl's own version and exit (asks no daemon)

Exit codes:
  0  ok
  1  error: bad usage, or the daemon refused or failed the request
  3  the daemon is not reachable (no socket, nothing listening, permission denied, no answer)
  4  the builder is not healthy (status, health; start/restart --wait when it did not become healthy)
`;
}

function readVersion(): string {
  // dist/client/main.js and client/main.ts sit at different depths below package.json.
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'linuxkit-nix' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

function positiveNumber(name: string, text: string, max = Infinity, integer = false): number {
  const value = Number(text);
  const ok =
    text.trim() !== '' &&
    Number.isFinite(value) &&
    value > 0 &&
    value <= max &&
    (!integer || Number.isInteger(value));
  if (!ok) {
    const what = integer ? `a whole number from 1 to ${max}` : 'a positive number';
    throw new UsageError(`--${name} must be ${what}, not "${text}"`);
  }
  return value;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Follow modes end when interrupted; that is their normal end, not a failure. */
function exitCleanlyOnInterrupt(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(EXIT.ok));
}

async function runAction(
  client: LinuxkitClient,
  action: 'start' | 'restart' | 'stop',
  v: Values,
): Promise<number> {
  const timeoutS = v.timeout !== undefined ? positiveNumber('timeout', v.timeout) : 120;
  // The VM before the request: after a restart, only a different pid counts as the new one.
  const before = v.wait && action === 'restart' ? await client.status() : undefined;
  const answer = await client[action]();
  if (v.json && !v.wait) printJson(answer);
  else if (!v.json) print(formatAccepted(action, answer.status));
  if (!v.wait) return EXIT.ok;

  if (!v.json) process.stderr.write(`waiting up to ${timeoutS} s for the builder to be healthy...\n`);
  const progress = v.json
    ? null
    : progressReporter({
        isTTY: process.stderr.isTTY === true,
        columns: process.stderr.columns ?? 80,
        write: (text) => process.stderr.write(text),
      });
  const outcome = await waitUntilHealthy(client, {
    notPid: before?.vm.pid ?? null,
    timeoutMs: timeoutS * 1000,
    onStatus: progress?.show,
  });
  progress?.end();
  if (v.json) printJson(outcome.status);
  else print(formatStatus(outcome.status, new Date()));
  if (outcome.ok) return EXIT.ok;
  process.stderr.write(`linuxkitctl: ${action}: ${outcome.why}\n`);
  return EXIT.unhealthy;
}

async function runLogs(client: LinuxkitClient, v: Values): Promise<number> {
  if (v.source !== undefined && v.source !== 'console' && v.source !== 'daemon') {
    throw new UsageError(`--source must be console or daemon, not "${v.source}"`);
  }
  const source = v.source as LogSource | undefined;
  const lines = v.lines !== undefined ? positiveNumber('lines', v.lines, 10000, true) : undefined;
  if (v.follow) {
    if (v.json) throw new UsageError('--json cannot be combined with -f');
    exitCleanlyOnInterrupt();
    return followLogs(client, { source, lines, write: print });
  }
  const answer = await client.logs({ source, lines });
  if (v.json) printJson(answer);
  else if (answer.lines.length > 0) print(answer.lines.join('\n'));
  return EXIT.ok;
}

async function runEvents(client: LinuxkitClient, v: Values): Promise<number> {
  exitCleanlyOnInterrupt();
  await client.events((event) => print(v.json ? JSON.stringify(event) : formatEvent(event))).done;
  process.stderr.write('linuxkitctl: linuxkitd closed the event stream (is it shutting down?)\n');
  return EXIT.unreachable;
}

async function runVersion(client: LinuxkitClient, v: Values): Promise<number> {
  const version = readVersion();
  let daemon: { version: string; pid: number } | null = null;
  let unreachable = '';
  try {
    daemon = (await client.status()).daemon;
  } catch (err) {
    if (!(err instanceof DaemonUnreachableError)) throw err;
    unreachable = err.message;
  }
  if (v.json) printJson({ linuxkitctl: version, linuxkitd: daemon });
  else
    print(
      `linuxkitctl ${version}\n${daemon ? `linuxkitd ${daemon.version} (pid ${daemon.pid})` : unreachable}`,
    );
  return EXIT.ok;
}

/** install, uninstall, doctor and image parse their own options; loaded only when used, to keep start-up fast. */
const SELF_PARSING_COMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  install: async () => (await import('./commands/install.js')).runInstall,
  uninstall: async () => (await import('./commands/uninstall.js')).runUninstall,
  doctor: async () => (await import('./commands/doctor.js')).runDoctor,
  image: async () => (await import('./commands/image.js')).runImage,
};

function selfParsingCommand(argv: string[]): { name: string; rest: string[] } | null {
  // `linuxkitctl --builder arm doctor` means `linuxkitctl doctor --builder arm`.
  const builder =
    argv[0] === '--builder' ? argv.slice(0, 2) : argv[0]?.startsWith('--builder=') ? argv.slice(0, 1) : [];
  const at =
    builder.length > 0
      ? builder.length
      : argv[0] === '--socket'
        ? 2
        : argv[0]?.startsWith('--socket=')
          ? 1
          : 0;
  const name = argv[at];
  if (!name || !(name in SELF_PARSING_COMMANDS)) return null;
  return { name, rest: [...argv.slice(at + 1), ...builder] };
}

/** status --all: every builder found under the state directory, each asked for its status. */
async function runStatusAll(v: Values): Promise<number> {
  const { listBuilderSockets } = await import('./commands/builders.js');
  const { base, builders } = await listBuilderSockets(process.env);
  if (builders.length === 0) {
    process.stderr.write(`linuxkitctl: no builders found in ${base} (linuxkitctl install sets one up)\n`);
    return EXIT.unreachable;
  }
  const entries: BuilderStatusEntry[] = await Promise.all(
    builders.map(async (b) => {
      try {
        return {
          builder: b.builder,
          socketPath: b.socketPath,
          status: await new LinuxkitClient({ socketPath: b.socketPath }).status(),
        };
      } catch (err) {
        if (!(err instanceof DaemonUnreachableError) && !(err instanceof ApiError)) throw err;
        return {
          builder: b.builder,
          socketPath: b.socketPath,
          error: err.message.replace(/^linuxkitd is not reachable at \S+: /, ''),
        };
      }
    }),
  );
  if (v.json)
    printJson({
      builders: entries.map((e) => ({
        builder: e.builder,
        socketPath: e.socketPath,
        status: e.status ?? null,
        error: e.error ?? null,
      })),
    });
  else print(formatStatusAll(entries, new Date()));
  return entries.every((e) => e.status?.healthy === true) ? EXIT.ok : EXIT.unhealthy;
}

async function run(argv: string[]): Promise<number> {
  const selfParsing = selfParsingCommand(argv);
  if (selfParsing) return (await SELF_PARSING_COMMANDS[selfParsing.name]!())(selfParsing.rest);
  const socketFallback = () =>
    defaultSocketPath(process.platform, process.getuid?.() ?? -1, homedir(), process.env);
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // Node's own wording runs long ("To specify a positional argument starting with a '-' ...").
    const message = (err as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    throw new UsageError(unknown ? `unknown option ${unknown[1]}` : message);
  }
  const v = parsed.values as Values;
  if (v.builder !== undefined && v.socket !== undefined)
    throw new UsageError('--socket and --builder exclude each other');
  let socketPath: string;
  if (v.builder !== undefined) {
    const { builderSocketPath, BuilderNameError } = await import('./commands/builders.js');
    try {
      socketPath = builderSocketPath(v.builder, process.env);
    } catch (err) {
      throw err instanceof BuilderNameError ? new UsageError(err.message) : err;
    }
  } else {
    socketPath = resolveSocketPath(v.socket, process.env, socketFallback);
  }
  const [command = 'help', ...extra] = parsed.positionals;
  if (v.version) {
    print(`linuxkitctl ${readVersion()}`);
    return EXIT.ok;
  }
  if (v.help || command === 'help') {
    print(usage(socketPath));
    return EXIT.ok;
  }
  const allowed = COMMANDS[command];
  if (!allowed)
    throw new UsageError(`unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
  if (command === 'disk') {
    if (extra.length !== 1 || extra[0] !== 'reset')
      throw new UsageError(
        `disk takes one command, reset (linuxkitctl disk reset)${extra.length ? `, not "${extra.join(' ')}"` : ''}`,
      );
  } else if (extra.length > 0) {
    throw new UsageError(`${command} takes no arguments, got "${extra.join(' ')}"`);
  }
  for (const name of Object.keys(v) as OptionName[]) {
    if (name !== 'socket' && name !== 'builder' && !allowed.includes(name)) {
      throw new UsageError(
        `--${name} is not an option of ${command}${allowed.length ? ` (it takes ${allowed.map((o) => `--${o}`).join(', ')})` : ''}`,
      );
    }
  }
  if (v.timeout !== undefined && !v.wait) throw new UsageError('--timeout only applies with --wait');
  if (v.all && (v.socket !== undefined || v.builder !== undefined))
    throw new UsageError('status --all lists every builder: it takes neither --socket nor --builder');

  const client = new LinuxkitClient({ socketPath });
  switch (command) {
    case 'status': {
      if (v.all) return runStatusAll(v);
      const status = await client.status();
      if (v.json) printJson(status);
      else print(formatStatus(status, new Date()));
      return status.healthy ? EXIT.ok : EXIT.unhealthy;
    }
    case 'health': {
      const health = await client.health();
      if (v.json) printJson(health);
      else print(formatHealth(health));
      return health.healthy ? EXIT.ok : EXIT.unhealthy;
    }
    case 'start':
    case 'stop':
    case 'restart':
      return runAction(client, command, v);
    case 'logs':
      return runLogs(client, v);
    case 'events':
      return runEvents(client, v);
    case 'disk': {
      const answer = await client.resetDisk();
      if (v.json) printJson(answer);
      else print(formatDiskReset(answer));
      return EXIT.ok;
    }
    default:
      return runVersion(client, v);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`linuxkitctl: ${err.message}\n(see linuxkitctl help)\n`);
    return EXIT.error;
  }
  if (err instanceof DaemonUnreachableError) {
    process.stderr.write(`linuxkitctl: ${err.message}\n`);
    return EXIT.unreachable;
  }
  if (err instanceof ApiError) {
    process.stderr.write(`linuxkitctl: ${err.error}: ${err.message}\n`);
    return EXIT.error;
  }
  process.stderr.write(`linuxkitctl: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.error;
}

// `linuxkitctl events | head -1`: a reader that goes away ends the command, not with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.exitCode = exitCodeFor(err);
  },
);
