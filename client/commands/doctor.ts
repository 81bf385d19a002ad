// linuxkitctl doctor: checks, in order, everything a remote build through the builder needs,
// and prints a fix for each failure. Exit 0 when all pass, 1 otherwise.
import type { HostInfo } from '../../daemon/config/load.js';
import type { HostFacts } from '../../daemon/host/host-facts.js';
import type { CheckResult, DoctorFacts } from '../install/doctor-checks.js';
import type { DaemonProgram } from '../../daemon/host-files/daemon-service.js';
import type { CommandRunner } from '../install/run-command.js';
import {
  candidateLayouts,
  currentProcessFacts,
  parseCommandArgs,
  processIo,
  UsageError,
  type CommandIo,
  type ProcessFacts,
} from './cli-context.js';

export const DOCTOR_USAGE = `Usage: linuxkitctl doctor [--system|--user] [--builder NAME] [--json] [--root DIR]

Checks, in order: the install; the service is loaded (launchd/systemd); the node it runs is
there and not a versioned path (Homebrew Cellar, Nix store); on macOS, node and main.js lie
outside the folders privacy protection keeps from launchd jobs; the daemon answers; the
builder is healthy; the SSH port is free or held by this builder's VM; ssh resolves the alias linuxkit-builder to 127.0.0.1, the port and
the key; the guest presents the pinned host key; /etc/nix/machines has the current entry;
Nix's builders setting reads that file; the keys are 0600 and owned right; the guest has free
space in /nix (gc.minFreeMiB); the guest clock is close to the host's. Each failure comes with
a fix. For a system install, run it with sudo (the keys and the socket are root's).

  --system / --user   which install to check (default: whichever is found, system first)
  --json              print {"ok": ..., "checks": [{id, ok, skipped, warning, message, fix}]}
  --root DIR          check an install made with --root DIR (service manager checks skipped)
  --builder NAME      check the builder installed with --builder NAME (default: the unnamed one)

Exit codes: 0 every check passed, 1 something failed (or bad usage).
`;

export interface DoctorDeps {
  facts: ProcessFacts;
  host: HostInfo;
  /** The machine's facts; default: read from this machine. */
  hostFacts: HostFacts;
  runner: CommandRunner;
  program: DaemonProgram;
  /** Replaces gathering altogether (tests of the output). */
  gather?: () => Promise<DoctorFacts>;
}

export function formatChecks(checks: CheckResult[]): string {
  let out = '';
  for (const c of checks) {
    const mark = c.skipped ? 'skip' : !c.ok ? 'FAIL' : c.warning ? 'warn' : ' ok ';
    out += `[${mark}] ${c.id}: ${c.message}\n`;
    if ((!c.ok || c.warning) && c.fix) out += `       fix: ${c.fix.replace(/\n/g, '\n       ')}\n`;
  }
  const failed = checks.filter((c) => !c.ok).length;
  const warned = checks.filter((c) => c.ok && c.warning).length;
  const warnings = warned === 0 ? '' : ` (${warned} warning${warned === 1 ? '' : 's'})`;
  out +=
    failed === 0
      ? `all checks passed${warnings}\n`
      : `${failed} check${failed === 1 ? '' : 's'} failed${warnings}\n`;
  return out;
}

export async function runDoctor(
  argv: string[],
  io: CommandIo = processIo,
  deps?: Partial<DoctorDeps>,
): Promise<number> {
  try {
    const { common, values } = parseCommandArgs('doctor', argv, { json: { type: 'boolean' } });
    if (common.help) {
      io.out(DOCTOR_USAGE);
      return 0;
    }
    const facts = deps?.facts ?? currentProcessFacts();
    let gather = deps?.gather;
    if (!gather) {
      const candidates = await candidateLayouts(common.scope, common.root, facts, common.builder);
      if (candidates.length === 0) throw new UsageError('no install to check');
      const { findInstall } = await import('../install/uninstaller.js');
      let chosen = candidates[0];
      let found = false;
      for (const c of candidates) {
        if (await findInstall([c.layout])) {
          chosen = c;
          found = true;
          break;
        }
      }
      const runner = deps?.runner ?? (await import('../install/run-command.js')).runCommand;
      const program =
        deps?.program ??
        (await import('../../daemon/host-files/daemon-service.js')).currentDaemonProgram(facts.env);
      const { currentHostFacts } = await import('../../daemon/host/host-facts.js');
      const { allHostTools } = await import('../../daemon/backends/backend-list.js');
      const { hostInfoFrom } = await import('../../daemon/config/load.js');
      const hostFacts = deps?.hostFacts ?? currentHostFacts(allHostTools());
      const host = deps?.host ?? hostInfoFrom(hostFacts);
      const { gatherDoctorFacts } = await import('../install/doctor-facts.js');
      gather = () =>
        gatherDoctorFacts({
          layout: chosen.layout,
          manifestFound: found,
          actingForUser: chosen.actingForUser,
          processUid: facts.uid,
          processUser: facts.username,
          host,
          hostFacts,
          program,
          runner,
          env: facts.env,
        });
    }
    const { evaluateChecks } = await import('../install/doctor-checks.js');
    const checks = evaluateChecks(await gather());
    const ok = checks.every((c) => c.ok);
    io.out(values.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : formatChecks(checks));
    return ok ? 0 : 1;
  } catch (err) {
    io.err(`linuxkitctl doctor: ${(err as Error).message}\n`);
    return 1;
  }
}
