// linuxkitctl --builder NAME and status --all: where each builder's daemon listens, by the one
// naming convention (daemon/config/builders.ts). Loaded by main.ts only when those flags are used.
import * as os from 'node:os';
import * as path from 'node:path';
import { builderNameProblem, builderStateDir, findBuilders } from '../../daemon/config/builders.js';
import { defaultStateDir, STATE_DIR_ENV, STATE_LAYOUT } from '../../daemon/config/paths.js';

export interface ClientHost {
  platform: NodeJS.Platform;
  uid: number;
  homedir: string;
}

export function currentClientHost(): ClientHost {
  return { platform: process.platform, uid: process.getuid?.() ?? -1, homedir: os.homedir() };
}

/** The default builder's state directory as this user's daemon has it: $LINUXKIT_NIX_STATE_DIR, else the default. */
export function baseStateDir(env: NodeJS.ProcessEnv, host: ClientHost): string {
  const fromEnv = env[STATE_DIR_ENV];
  return path.resolve(fromEnv ? fromEnv : defaultStateDir(host.platform, host.homedir, host.uid, env));
}

export class BuilderNameError extends Error {
  override readonly name = 'BuilderNameError';
}

/** The control socket of builder `name` (null: the default builder). */
export function builderSocketPath(
  name: string | null,
  env: NodeJS.ProcessEnv,
  host: ClientHost = currentClientHost(),
): string {
  if (name !== null) {
    const problem = builderNameProblem(name);
    if (problem) throw new BuilderNameError(`--builder: ${problem}`);
  }
  return path.join(builderStateDir(baseStateDir(env, host), name), STATE_LAYOUT.socket);
}

export interface BuilderSocket {
  /** null: the default builder. */
  builder: string | null;
  stateDir: string;
  socketPath: string;
}

/** Every builder with a state directory under the base one: the default first, then by name. */
export async function listBuilderSockets(
  env: NodeJS.ProcessEnv,
  host: ClientHost = currentClientHost(),
): Promise<{ base: string; builders: BuilderSocket[] }> {
  const base = baseStateDir(env, host);
  const found = await findBuilders(base, { config: STATE_LAYOUT.config, socket: STATE_LAYOUT.socket });
  return {
    base,
    builders: found.map((b) => ({ ...b, socketPath: path.join(b.stateDir, STATE_LAYOUT.socket) })),
  };
}
