// Does Nix read our machines file? Its `builders` setting defaults to @<conf dir>/machines, but a
// tool that sets `builders` to anything else hides the file (linuxkit-nix #7). We read nix.conf
// the way Nix does, say where `builders` was set, and offer the line that fixes it; we never
// rewrite a user's nix.conf.
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { renderNixBuildersSetting } from '../../daemon/host-files/nix-darwin-snippets.js';
import { storeLinkTarget } from './store-links.js';

export type NixConfLine =
  | { kind: 'setting'; name: string; value: string; line: number }
  | { kind: 'include'; path: string; optional: boolean; line: number };

/** nix.conf lines: `name = value`, `include FILE`, `!include FILE`; `#` starts a comment. */
export function parseNixConfText(text: string): NixConfLine[] {
  const out: NixConfLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const hash = raw.indexOf('#');
    // Nix joins the whitespace-separated words of a value with single spaces.
    const tokens = (hash >= 0 ? raw.slice(0, hash) : raw).split(/[ \t\r]+/).filter((w) => w !== '');
    if (tokens.length === 0) return;
    if ((tokens[0] === 'include' || tokens[0] === '!include') && tokens.length === 2) {
      out.push({ kind: 'include', path: tokens[1], optional: tokens[0] === '!include', line: i + 1 });
    } else if (tokens.length >= 2 && tokens[1] === '=') {
      out.push({ kind: 'setting', name: tokens[0], value: tokens.slice(2).join(' '), line: i + 1 });
    } else {
      // `name=value` without spaces: Nix accepts it too.
      const eq = tokens[0].indexOf('=');
      if (eq > 0)
        out.push({
          kind: 'setting',
          name: tokens[0].slice(0, eq),
          value: [tokens[0].slice(eq + 1), ...tokens.slice(1)].filter(Boolean).join(' '),
          line: i + 1,
        });
    }
  });
  return out;
}

export interface SettingSource {
  value: string;
  /** "<file>:<line>", "NIX_CONFIG" or the command that printed it. */
  source: string;
  /** The file that set it, when a file did. */
  file?: string;
  line?: number;
}

export interface NixConfRead {
  /** The last `builders` set; null when nothing sets it (Nix then uses the default). */
  builders: SettingSource | null;
  filesRead: string[];
  problems: string[];
}

type ReadText = (file: string) => Promise<string>;

/**
 * `builders` as the files say: `<confDir>/nix.conf` with its includes, then NIX_CONFIG (which
 * Nix reads after the files). Missing nix.conf means "not set".
 */
export async function readBuildersFromFiles(
  nixConfDir: string,
  nixConfigEnv: string | undefined,
  read: ReadText = (f) => readFile(f, 'utf8'),
): Promise<NixConfRead> {
  const result: NixConfRead = { builders: null, filesRead: [], problems: [] };
  const visit = async (file: string, optional: boolean, depth: number): Promise<void> => {
    if (depth > 16) {
      result.problems.push(`${file}: includes nested deeper than 16 levels; stopped there`);
      return;
    }
    let text: string;
    try {
      text = await read(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || !optional) {
        if (code === 'ENOENT' && depth === 0) return; // no nix.conf at all: every setting is default
        result.problems.push(`cannot read ${file}: ${(err as Error).message}`);
      }
      return;
    }
    result.filesRead.push(file);
    for (const l of parseNixConfText(text)) {
      if (l.kind === 'include') await visit(path.resolve(path.dirname(file), l.path), l.optional, depth + 1);
      else if (l.name === 'builders')
        result.builders = { value: l.value, source: `${file}:${l.line}`, file, line: l.line };
    }
  };
  await visit(path.join(nixConfDir, 'nix.conf'), false, 0);
  if (nixConfigEnv) {
    for (const l of parseNixConfText(nixConfigEnv)) {
      if (l.kind === 'setting' && l.name === 'builders')
        result.builders = { value: l.value, source: 'NIX_CONFIG' };
    }
  }
  return result;
}

/** The value `nix show-config` prints for `builders`, or null when the output has no such line. */
export function buildersFromShowConfig(output: string): string | null {
  for (const line of output.split('\n')) {
    const m = /^builders = ?(.*)$/.exec(line);
    if (m) return m[1].trim();
  }
  return null;
}

/** Nix's default: the machines file in its configuration directory. */
export function defaultBuilders(nixConfDir: string): string {
  return `@${path.join(nixConfDir, 'machines')}`;
}

/** The machines files a `builders` value reads (Nix splits it on ';' and newlines). */
export function machinesFilesIn(builders: string): string[] {
  return builders
    .split(/[;\n]/)
    .map((part) => part.trim())
    .filter((part) => part.startsWith('@'))
    .map((part) => path.normalize(part.slice(1).trim()));
}

export interface BuildersCheck {
  ok: boolean;
  /** The effective value. */
  value: string;
  message: string;
  /** When not ok: what to change, never applied by us. */
  fix?: string;
}

/** Where `builders` comes from, and where a person (not we) should change it. */
export interface BuildersDiscovery extends NixConfRead {
  /** The file that sets it (or nix.conf, when nothing does) is a link into the Nix store: nix-darwin or home-manager owns it. */
  managedByNixTool: boolean;
  /**
   * The file to put a `builders` line in: Determinate's nix.custom.conf when nix.conf includes it
   * (Determinate rewrites nix.conf on upgrade), else the file that sets it, else nix.conf; null
   * when a Nix tool owns the file.
   */
  editFile: string | null;
}

/**
 * The one nix.conf discovery install and doctor share: the files as Nix reads them, whether a
 * tool owns them (nix-darwin's store link), and Determinate's nix.custom.conf.
 */
export async function discoverBuilders(
  nixConfDir: string,
  nixConfigEnv: string | undefined,
  deps: { read?: ReadText; storeLink?: (file: string) => Promise<string | null> } = {},
): Promise<BuildersDiscovery> {
  const read = deps.read ?? ((f: string) => readFile(f, 'utf8'));
  const storeLink = deps.storeLink ?? storeLinkTarget;
  const result = await readBuildersFromFiles(nixConfDir, nixConfigEnv, read);
  const nixConf = path.join(nixConfDir, 'nix.conf');
  const owner = result.builders?.file ?? nixConf;
  const managedByNixTool = result.builders?.source !== 'NIX_CONFIG' && (await storeLink(owner)) !== null;
  const nixConfText = await read(nixConf).catch(() => '');
  const custom = parseNixConfText(nixConfText)
    .filter((l): l is Extract<NixConfLine, { kind: 'include' }> => l.kind === 'include')
    .map((l) => path.resolve(nixConfDir, l.path))
    .find((f) => path.basename(f) === 'nix.custom.conf');
  let editFile: string | null;
  if (managedByNixTool) editFile = null;
  else if (custom && (!result.builders?.file || result.builders.file === nixConf)) editFile = custom;
  else editFile = result.builders?.file ?? nixConf;
  return { ...result, managedByNixTool, editFile };
}

/**
 * Whether the effective `builders` (null: not set, so the default) reads `machinesFile`.
 * `managedByNixTool`: nix-darwin or home-manager owns the file (a store link); `editFile`: where
 * a new line belongs (discoverBuilders), by default the file that sets it or nix.conf.
 */
export function checkBuilders(input: {
  setting: SettingSource | null;
  nixConfDir: string;
  machinesFile: string;
  managedByNixTool?: boolean;
  editFile?: string | null;
}): BuildersCheck {
  const value = input.setting?.value ?? defaultBuilders(input.nixConfDir);
  const where = input.setting ? `from ${input.setting.source}` : 'not set, so the default';
  const target = path.normalize(input.machinesFile);
  if (machinesFilesIn(value).includes(target)) {
    return { ok: true, value, message: `builders (${where}) reads ${target}` };
  }
  const shown = value === '' ? "''" : `'${value}'`;
  const newLine = value.trim() === '' ? `builders = @${target}` : `builders = @${target} ; ${value}`;
  const file = input.setting?.file;
  const editFile =
    input.editFile === undefined ? (file ?? path.join(input.nixConfDir, 'nix.conf')) : input.editFile;
  let fix: string;
  if (input.setting?.source === 'NIX_CONFIG')
    fix = `NIX_CONFIG sets builders: add "@${target} ;" in front of its value there`;
  else if (input.managedByNixTool || editFile === null) {
    const owned = file ?? path.join(input.nixConfDir, 'nix.conf');
    fix = `${owned} is a link into the Nix store: set it in the tool that writes it, not in the file (nix-darwin: nix.settings.builders; it also has nix.linux-builder):\n    ${renderNixBuildersSetting(target, value).trim()}`;
  } else if (file && editFile === file)
    fix = `in ${file} line ${input.setting?.line}, change the builders line to:\n    ${newLine}`;
  else if (path.basename(editFile) === 'nix.custom.conf') {
    fix = `add this line to ${editFile} (nix.conf includes it last; Determinate Nix rewrites nix.conf itself on upgrade):\n    ${newLine}`;
  } else fix = `add this line to ${editFile}:\n    ${newLine}`;
  return {
    ok: false,
    value,
    message: `builders is ${shown} (${where}), which hides ${target}: Nix will not use the builder`,
    fix,
  };
}
