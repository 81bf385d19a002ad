// The daemon's config file as install leaves it: a new file shows every setting (as the
// daemon's own first start writes it); an existing file gets only the settings given on the
// command line, and is not rewritten at all when they change nothing, so hand edits and
// formatting survive a second install.
import { isDeepStrictEqual } from 'node:util';
import { applyOverrides, parseConfig, resolveConfig, type HostInfo } from '../../daemon/config/load.js';
import type { ConfigError, DaemonConfig } from '../../daemon/config/schema.js';

export class InstallConfigError extends Error {
  override readonly name = 'InstallConfigError';
  constructor(
    readonly errors: ConfigError[],
    heading: string,
  ) {
    super(`${heading}:\n${errors.map((e) => `  ${e.message}`).join('\n')}`);
  }
}

export interface InstallConfig {
  config: DaemonConfig;
  /** The file's new text; equal to the old text when nothing changes. */
  text: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function installConfig(
  existing: string | null,
  overrides: Partial<DaemonConfig>,
  path: string,
  host: HostInfo,
): InstallConfig {
  if (existing === null) {
    const result = resolveConfig(overrides, host);
    if (!result.ok)
      throw new InstallConfigError(result.errors, 'the settings given do not make a valid config');
    return { config: result.config, text: `${JSON.stringify(result.config, null, 2)}\n` };
  }
  const current = parseConfig(existing, path, host);
  if (!current.ok)
    throw new InstallConfigError(
      current.errors,
      `${path} is not a valid config; fix it first (nothing was changed)`,
    );
  const next = applyOverrides(current.config, overrides);
  if (!next.ok)
    throw new InstallConfigError(next.errors, 'the settings given do not fit the existing config');
  if (isDeepStrictEqual(next.config, current.config)) return { config: current.config, text: existing };

  // Change only the keys whose effective value moved (the overrides, and values derived from
  // them such as maxJobs following cpus when the file spells them out).
  const raw = JSON.parse(existing.charCodeAt(0) === 0xfeff ? existing.slice(1) : existing) as unknown;
  if (!isObject(raw)) throw new Error(`${path}: expected a JSON object`);
  const changed = Object.keys(next.config).filter(
    (k) => !isDeepStrictEqual(next.config[k as keyof DaemonConfig], current.config[k as keyof DaemonConfig]),
  );
  for (const key of changed) {
    if (key in overrides || key in raw) raw[key] = next.config[key as keyof DaemonConfig];
  }
  const check = resolveConfig(raw, host);
  if (!check.ok || !isDeepStrictEqual(check.config, next.config)) {
    // A derived value the file leaves implicit would now come out differently: spell it out.
    for (const key of changed) raw[key] = next.config[key as keyof DaemonConfig];
  }
  return { config: next.config, text: `${JSON.stringify(raw, null, 2)}\n` };
}
