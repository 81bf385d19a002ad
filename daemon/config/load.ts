// From config text (or an object) to the effective DaemonConfig: syntax, defaults, schema,
// then the checks that involve more than one key.
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { GuestArch } from '../backend.js';
import { findBackend, orList } from '../backends/backend-list.js';
import { currentHostFacts, type HostFacts } from '../host/host-facts.js';
import { checkJsonText } from './json-text.js';
import { DaemonConfigSchema, type ConfigError, type ConfigResult, type DaemonConfig } from './schema.js';
import { formatValue, schemaErrors } from './schema-errors.js';

export type { ConfigError, ConfigResult, DaemonConfig } from './schema.js';

/** The host facts some defaults depend on; tests pass their own. */
export interface HostInfo {
  platform: NodeJS.Platform;
  /** The machine's own architecture in `process.arch` spelling ('x64', 'arm64'): under Rosetta not process.arch. */
  arch: string;
}

export function hostInfoFrom(facts: Pick<HostFacts, 'platform' | 'machineArch'>): HostInfo {
  return { platform: facts.platform, arch: facts.machineArch };
}

export function currentHost(): HostInfo {
  return hostInfoFrom(currentHostFacts());
}

/** The guest runs natively on a Mac (hvf); elsewhere x86_64 is what Nix users ask for most. */
export function defaultArch(host: HostInfo): GuestArch {
  return host.platform === 'darwin' && host.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

export function defaultSystems(arch: GuestArch): string[] {
  return [`${arch}-linux`];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks that involve more than one key; run on a config that passed the schema. */
export function crossFieldErrors(c: DaemonConfig): ConfigError[] {
  const errors: ConfigError[] = [];
  const atLeast = (key: string, value: number, otherKey: string, other: number, why = '') => {
    if (value < other)
      errors.push({ key, message: `${key} must be at least ${otherKey} (${other})${why}; got ${value}` });
  };
  atLeast('restart.maxDelayMs', c.restart.maxDelayMs, 'restart.initialDelayMs', c.restart.initialDelayMs);
  atLeast(
    'probe.intervalMs',
    c.probe.intervalMs,
    'probe.timeoutMs',
    c.probe.timeoutMs,
    ' so probes do not overlap',
  );
  atLeast(
    'probe.nixIntervalMs',
    c.probe.nixIntervalMs,
    'probe.intervalMs',
    c.probe.intervalMs,
    ', as a Nix probe takes the place of an SSH check',
  );
  atLeast(
    'probe.degradedRestartMs',
    c.probe.degradedRestartMs,
    'probe.intervalMs',
    c.probe.intervalMs,
    ' so one failed probe does not restart the VM',
  );
  atLeast('gc.maxFreeMiB', c.gc.maxFreeMiB, 'gc.minFreeMiB', c.gc.minFreeMiB);
  // What the chosen backend can boot, from its descriptor; what this host can run is
  // choose-backend's question (a config file may move between machines).
  const backend = findBackend(c.backend);
  if (backend && !backend.guestArchs.includes(c.arch)) {
    const archs = orList(backend.guestArchs);
    errors.push({
      key: 'arch',
      message: `arch must be ${archs} with backend ${backend.name} (it runs only ${archs} guests); got '${c.arch}'`,
    });
  }
  if (backend && c.accel !== 'auto' && !backend.accelerators.includes(c.accel)) {
    errors.push({
      key: 'accel',
      message: `accel must be ${orList(['auto', ...backend.accelerators])} with backend ${backend.name}; got '${c.accel}'`,
    });
  }
  const native = `${c.arch}-linux`;
  if (!c.systems.includes(native)) {
    errors.push({
      key: 'systems',
      message: `systems must include '${native}', the guest's own system (arch ${c.arch}); got ${formatValue(c.systems)}`,
    });
  }
  return errors;
}

// Keys in schema order, so a written config file reads like the documentation.
function inSchemaOrder(schema: TSchema, value: unknown): unknown {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props || !isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(props)) {
    if (value[key] !== undefined) out[key] = inSchemaOrder(props[key], value[key]);
  }
  return out;
}

function validate(candidate: unknown): ConfigResult {
  const errors = schemaErrors(DaemonConfigSchema, candidate);
  if (errors.length > 0) return { ok: false, errors };
  const config = inSchemaOrder(DaemonConfigSchema, candidate) as DaemonConfig;
  const cross = crossFieldErrors(config);
  return cross.length > 0 ? { ok: false, errors: cross } : { ok: true, config };
}

/** Fills defaults into a parsed config object and validates it. `raw` is not modified. */
export function resolveConfig(raw: unknown, host: HostInfo = currentHost()): ConfigResult {
  if (!isObject(raw)) {
    return {
      ok: false,
      errors: [
        { key: '', message: `the config must be a JSON object such as {"cpus": 4}; got ${formatValue(raw)}` },
      ],
    };
  }
  const c = Value.Default(DaemonConfigSchema, structuredClone(raw)) as Record<string, unknown>;
  // Defaults that depend on the host or on other keys. When what they derive from is itself
  // invalid, a placeholder keeps the error list to the key that is really wrong.
  if (c.arch === undefined) c.arch = defaultArch(host);
  if (c.systems === undefined) {
    c.systems = defaultSystems(c.arch === 'aarch64' ? 'aarch64' : 'x86_64');
  }
  if (c.maxJobs === undefined) {
    c.maxJobs = Value.Check(DaemonConfigSchema.properties.cpus, c.cpus) ? c.cpus : 1;
  }
  return validate(c);
}

/** The effective config of an empty file. */
export function defaultConfig(host: HostInfo = currentHost()): DaemonConfig {
  const result = resolveConfig({}, host);
  if (!result.ok)
    throw new Error(`built-in defaults are invalid: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.config;
}

/**
 * Parses config file text. `source` (usually the path) prefixes syntax errors, which carry a
 * line and column.
 */
export function parseConfig(text: string, source: string, host: HostInfo = currentHost()): ConfigResult {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const problems = checkJsonText(body);
  if (problems.length > 0) {
    return {
      ok: false,
      errors: problems.map((p) => ({ ...p, message: `${source}:${p.line}:${p.column}: ${p.message}` })),
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (err) {
    // Only if the scanner and JSON.parse ever disagree.
    return { ok: false, errors: [{ key: '', message: `${source}: ${(err as Error).message}` }] };
  }
  return resolveConfig(raw, host);
}

/** Reads and parses a config file; a missing or unreadable file is an error naming the path. */
export async function loadConfigFile(path: string, host: HostInfo = currentHost()): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const message =
      e.code === 'ENOENT'
        ? `config file ${path} does not exist; create it (an empty object {} means all defaults) or pass --config FILE`
        : e.code === 'EISDIR'
          ? `config file ${path} is a directory; expected a JSON file`
          : `cannot read config file ${path}: ${e.message}`;
    return { ok: false, errors: [{ key: '', message }] };
  }
  return parseConfig(text, path, host);
}

/**
 * Flags (or API requests) override the file. A derived value that still equals what it was
 * derived from follows the override: `--cpus 8` raises maxJobs when maxJobs was the old cpus,
 * and `--arch aarch64` switches systems when they were the old arch's default.
 */
export function applyOverrides(config: DaemonConfig, overrides: Partial<DaemonConfig>): ConfigResult {
  const next: Record<string, unknown> = { ...structuredClone(config) };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) next[key] = structuredClone(value);
  }
  if (
    overrides.arch !== undefined &&
    overrides.systems === undefined &&
    isDeepStrictEqual(config.systems, defaultSystems(config.arch))
  ) {
    next.systems = defaultSystems(overrides.arch);
  }
  if (overrides.cpus !== undefined && overrides.maxJobs === undefined && config.maxJobs === config.cpus) {
    next.maxJobs = overrides.cpus;
  }
  return validate(next);
}
