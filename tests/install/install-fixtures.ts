// Shared by the install, uninstall and doctor tests: a pretend machine (platform, user),
// a recording command runner, the commands run with captured output, and tree snapshots that
// compare a --root folder byte for byte.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, lstatSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ProcessFacts } from '../../client/commands/cli-context.js';
import { runDoctor } from '../../client/commands/doctor.js';
import { runInstall } from '../../client/commands/install.js';
import { runUninstall } from '../../client/commands/uninstall.js';
import type { CommandResult, CommandRunner } from '../../client/install/run-command.js';

export const PROGRAM = { node: '/usr/local/bin/node', mainJs: '/opt/linuxkit-nix/dist/daemon/main.js' };

export function pretendMachine(platform: 'darwin' | 'linux'): ProcessFacts {
  return {
    platform,
    uid: 1000,
    gid: 1000,
    username: 'alice',
    home: platform === 'darwin' ? '/Users/alice' : '/home/alice',
    env: {},
  };
}

export interface RecordingRunner {
  run: CommandRunner;
  calls: string[][];
}

/** A runner that answers from `answer` (default: exit 0) and remembers every command. */
export function recordingRunner(
  answer: (argv: string[]) => CommandResult = () => ({ code: 0, stdout: '', stderr: '' }),
): RecordingRunner {
  const calls: string[][] = [];
  return {
    calls,
    run: async (argv) => {
      calls.push(argv);
      return answer(argv);
    },
  };
}

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

type Command = 'install' | 'uninstall' | 'doctor';

export async function cli(
  command: Command,
  argv: string[],
  opts: {
    platform?: 'darwin' | 'linux';
    runner?: RecordingRunner;
    facts?: ProcessFacts;
    program?: typeof PROGRAM;
    /** Linux: whether systemd runs (default: it does, as on the machines users install on). */
    systemdRuns?: boolean;
  } = {},
): Promise<CliRun> {
  const facts = opts.facts ?? pretendMachine(opts.platform ?? 'linux');
  const runner = opts.runner ?? recordingRunner();
  let out = '';
  let err = '';
  const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
  const common = { facts, runner: runner.run, program: opts.program ?? PROGRAM };
  const host = { platform: facts.platform, arch: 'x64' };
  const code =
    command === 'install'
      ? await runInstall(argv, io, { ...common, host, toolDirs: [], nixDaemonSocketExists: true })
      : command === 'uninstall'
        ? await runUninstall(argv, io, { ...common, systemdRuns: () => opts.systemdRuns ?? true })
        : await runDoctor(argv, io, { ...common, host });
  return { code, out, err };
}

/** Every entry under `root`: type, mode and, for files, a content hash. Sorted, one per line. */
export function treeSnapshot(root: string): string {
  const lines: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      const rel = relative(root, p);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isDirectory()) {
        lines.push(`d ${mode} ${rel}/`);
        walk(p);
      } else if (st.isSymbolicLink()) lines.push(`l ${rel} -> ${readlinkSync(p)}`);
      else lines.push(`f ${mode} ${rel} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(root);
  return lines.join('\n') + '\n';
}

/** What varies from run to run in an installed tree, replaced by stable names. */
export function normaliser(root: string, keysDir: string): (text: string) => string {
  const pub = (name: string) => readFileSync(join(keysDir, name), 'utf8').trim();
  const host = pub('ssh_host_ed25519_key.pub');
  const client = pub('client_ed25519.pub');
  const pairs: Array<[string, string]> = [
    [Buffer.from(`${host}\n`).toString('base64'), '<BASE64_OF_HOST_KEY_LINE>'],
    [host.split(' ')[1], '<HOST_KEY>'],
    [client.split(' ')[1], '<CLIENT_KEY>'],
    [root, '<ROOT>'],
  ];
  return (text) => pairs.reduce((t, [from, to]) => t.split(from).join(to), text);
}

/** The tree with each file's (normalised) content: private keys only by name. */
export function treeWithContents(root: string, normalise: (t: string) => string): string {
  let out = '';
  // Without the hashes: the contents follow, normalised.
  for (const line of treeSnapshot(root).trim().split('\n')) out += `${line.replace(/ [0-9a-f]{64}$/, '')}\n`;
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((name) => {
        const p = join(dir, name);
        return lstatSync(p).isDirectory() ? walk(p) : [p];
      });
  for (const file of walk(root)) {
    const rel = relative(root, file);
    const text = readFileSync(file, 'utf8');
    const body = text.includes('PRIVATE KEY') ? '<private key>\n' : normalise(text);
    out += `\n==> ${rel} <==\n${body}`;
  }
  return out;
}
