// What makes install refuse about this machine rather than its files: the service's node or
// main.js in a folder macOS keeps from launchd jobs (protected-folders.ts), and another program
// listening on the builder's SSH port (ssh-port-check.ts). Either would leave a service that
// cannot start, while install itself, run from a Terminal, sees nothing wrong.
import { realpath } from 'node:fs/promises';
import type { DaemonConfig } from '../../daemon/config/schema.js';
import type { DaemonProgram } from '../../daemon/host-files/daemon-service.js';
import type { InstallLayout } from '../../daemon/host-files/install-layout.js';
import { protectedPathFinding } from './protected-folders.js';
import type { CommandRunner } from './run-command.js';
import { gatherSshPortFacts, judgeSshPort } from './ssh-port-check.js';

export interface HostRefusalInput {
  layout: InstallLayout;
  config: Pick<DaemonConfig, 'sshPort'>;
  program: DaemonProgram;
  runner: CommandRunner;
}

/** Each refusal is one message that says what is wrong and what to do. */
export async function hostRefusals(input: HostRefusalInput): Promise<string[]> {
  const { layout, config, program } = input;
  const out: string[] = [];
  // As named and as resolved: a link from elsewhere into ~/Documents is blocked too.
  const named = [program.node, program.mainJs];
  const resolved = await Promise.all(named.map((f) => realpath(f).catch(() => f)));
  const privacy = protectedPathFinding({
    paths: [...new Set([...named, ...resolved])],
    home: layout.user.home,
    platform: layout.platform,
  });
  if (privacy) out.push(`${privacy.message}; ${privacy.fix}`);

  const port = judgeSshPort(
    await gatherSshPortFacts({
      port: config.sshPort,
      stateDir: layout.stateDir,
      configPath: layout.configPath,
      builder: layout.builder,
      runner: input.runner,
    }),
  );
  if (!port.ok) out.push(`${port.message}; ${port.fix}`);
  return out;
}
