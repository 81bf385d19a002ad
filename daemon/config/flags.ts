// linuxkitd's command line. Setting flags are validated with the same schema as the file, so
// `--cpus 0` and `"cpus": 0` get the same message, naming the flag.
import { parseArgs } from 'node:util';
import { backendSettingChoices } from '../backends/backend-list.js';
import { DaemonConfigSchema, type ConfigError, type DaemonConfig } from './schema.js';
import { schemaErrors, suggestKey } from './schema-errors.js';
import { builderNameProblem } from './builders.js';

export interface DaemonPathFlags {
  config?: string;
  stateDir?: string;
  socket?: string;
  /** A named builder (config/builders.ts): its own state directory unless --state-dir says otherwise. */
  builder?: string;
}

export interface DaemonArgs {
  paths: DaemonPathFlags;
  /** Settings given on the command line; they win over the config file. */
  overrides: Partial<DaemonConfig>;
  foreground: boolean;
  version: boolean;
  help: boolean;
}

export type DaemonArgsResult = { ok: true; args: DaemonArgs } | { ok: false; errors: ConfigError[] };

// Flag name → config key, for the flags that override a setting.
const SETTING_FLAGS = {
  'ssh-port': 'sshPort',
  backend: 'backend',
  accel: 'accel',
  arch: 'arch',
  cpus: 'cpus',
  memory: 'memoryMiB',
  mode: 'mode',
} as const satisfies Record<string, keyof DaemonConfig>;

const PATH_FLAGS = {
  config: 'config',
  'state-dir': 'stateDir',
  socket: 'socket',
  builder: 'builder',
} as const;

const OPTIONS = {
  config: { type: 'string' },
  'state-dir': { type: 'string' },
  socket: { type: 'string' },
  builder: { type: 'string' },
  'ssh-port': { type: 'string' },
  backend: { type: 'string' },
  accel: { type: 'string' },
  arch: { type: 'string' },
  cpus: { type: 'string' },
  memory: { type: 'string' },
  mode: { type: 'string' },
  foreground: { type: 'boolean' },
  version: { type: 'boolean', short: 'V' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const DAEMON_USAGE = `Usage: linuxkitd [options]

Runs the Linux builder VM for Nix and keeps it running. Normally started by launchd/systemd.

Paths:
  --config FILE      config file (default: <state-dir>/config.json, written on first start)
  --state-dir DIR    state directory (VM record, keys, logs, socket)
  --socket PATH      control socket (default: <state-dir>/daemon.sock)
  --builder NAME     one of several builders side by side: state directory
                     <default state dir>/builders/NAME (unless --state-dir is given)

Settings (override the config file):
  --backend NAME     ${backendSettingChoices()}
  --accel NAME       auto, hvf, kvm or tcg
  --arch NAME        x86_64 or aarch64
  --cpus N           1 to 64
  --memory MiB       256 to 262144
  --ssh-port N       1024 to 65535 (bound on 127.0.0.1 only)
  --mode NAME        always (the VM runs while started) or on-demand (the first
                     connection starts it, idleness stops it)

  --foreground       log to the terminal as well as the log file
  -V, --version      print the version and exit
  -h, --help         print this help and exit
`;

// Numbers stay strings when they are not plain integers, so the schema reports "got 'abc'".
const asSettingValue = (text: string): string | number => (/^-?\d+$/.test(text) ? Number(text) : text);

export function parseDaemonArgs(argv: string[]): DaemonArgsResult {
  // strict: false so unknown flags and missing values are reported here, with suggestions,
  // instead of parseArgs' generic TypeError.
  const { values, tokens } = parseArgs({
    args: argv,
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const errors: ConfigError[] = [];
  const known = Object.keys(OPTIONS);

  let afterUnknownOption = false;
  for (const token of tokens) {
    if (token.kind === 'positional') {
      // `--cpu 3`: the 3 belongs to the unknown option, which is already reported.
      if (!afterUnknownOption) {
        errors.push({
          key: token.value,
          message: `unexpected argument '${token.value}'; linuxkitd takes only options (see --help)`,
        });
      }
      afterUnknownOption = false;
    } else if (token.kind === 'option') {
      const spec = Object.hasOwn(OPTIONS, token.name)
        ? (OPTIONS as Record<string, { type: string }>)[token.name]
        : undefined;
      afterUnknownOption = !spec && !token.inlineValue;
      if (!spec) {
        const suggestion = suggestKey(token.name, known);
        const hint = suggestion ? ` (did you mean '--${suggestion}'?)` : '; see --help';
        errors.push({ key: token.rawName, message: `unknown option '${token.rawName}'${hint}` });
      } else if (spec.type === 'string' && (token.value === undefined || token.value === '')) {
        errors.push({ key: `--${token.name}`, message: `--${token.name} needs a value` });
      } else if (spec.type === 'string' && !token.inlineValue && token.value?.startsWith('--')) {
        // non-strict parseArgs took the next option as this one's value
        errors.push({
          key: `--${token.name}`,
          message: `--${token.name} needs a value; got the option '${token.value}'`,
        });
      } else if (spec.type === 'boolean' && token.inlineValue) {
        errors.push({
          key: `--${token.name}`,
          message: `--${token.name} takes no value; got '${token.value ?? ''}'`,
        });
      }
    } else {
      afterUnknownOption = false;
    }
  }

  const overrides: Record<string, unknown> = {};
  const flagOf: Record<string, string> = {};
  // In command-line order, so errors read in the order the flags were typed.
  const settingFlags = new Set(
    tokens.flatMap((tok) =>
      tok.kind === 'option' && Object.hasOwn(SETTING_FLAGS, tok.name)
        ? [tok.name as keyof typeof SETTING_FLAGS]
        : [],
    ),
  );
  for (const flag of settingFlags) {
    const key = SETTING_FLAGS[flag];
    const text = values[flag];
    if (typeof text !== 'string' || errors.some((e) => e.key === `--${flag}`)) continue;
    overrides[key] = key === 'cpus' || key === 'memoryMiB' || key === 'sshPort' ? asSettingValue(text) : text;
    flagOf[key] = `--${flag}`;
  }
  for (const [key, value] of Object.entries(overrides)) {
    const schema = DaemonConfigSchema.properties[key as keyof typeof DaemonConfigSchema.properties];
    errors.push(...schemaErrors(schema, value, () => flagOf[key]));
  }

  if (
    typeof values.builder === 'string' &&
    values.builder !== '' &&
    !errors.some((e) => e.key === '--builder')
  ) {
    const problem = builderNameProblem(values.builder);
    if (problem) errors.push({ key: '--builder', message: `--builder: ${problem}` });
  }

  if (errors.length > 0) return { ok: false, errors };

  const paths: DaemonPathFlags = {};
  for (const [flag, key] of Object.entries(PATH_FLAGS)) {
    const text = values[flag];
    if (typeof text === 'string') paths[key] = text;
  }
  return {
    ok: true,
    args: {
      paths,
      overrides: overrides as Partial<DaemonConfig>,
      foreground: values.foreground === true,
      version: values.version === true,
      help: values.help === true,
    },
  };
}
