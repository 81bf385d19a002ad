// Doctor's checks of what the service manager will run and where: the node the launchd job or
// systemd unit names (still there, not a versioned path), macOS privacy protection of the
// node and main.js, and the SSH port free for this builder's VM. Pure, like doctor-checks.ts.
import { versionedNodeProblem } from '../../daemon/host-files/node-path.js';
import { protectedPathFinding } from './protected-folders.js';
import { judgeSshPort, type SshPortFacts } from './ssh-port-check.js';
import type { CheckResult } from './doctor-checks.js';

/** The program the installed service file runs, as read back from it. */
export type ServiceProgramFacts =
  | { file: string; manager: 'launchd' | 'systemd'; ok: false; error: string }
  | {
      file: string;
      manager: 'launchd' | 'systemd';
      ok: true;
      /** ProgramArguments (plist) or ExecStart's words (unit). */
      argv: string[];
      /** argv[0] is a file this process may execute. */
      nodeExecutable: boolean;
      /** argv[0] and argv[1] with links resolved (as far as they exist). */
      resolved: string[];
    };

export interface HostCheckFacts {
  platform: 'darwin' | 'linux';
  /** The home of the user the service runs as. */
  home: string;
  serviceProgram: ServiceProgramFacts;
  sshPort: SshPortFacts;
}

const programField = (p: ServiceProgramFacts) =>
  p.manager === 'launchd' ? `ProgramArguments[0] of ${p.file}` : `the node in ExecStart= of ${p.file}`;

export function serviceProgramCheck(f: HostCheckFacts): CheckResult {
  const p = f.serviceProgram;
  if (!p.ok)
    return {
      id: 'service-program',
      ok: false,
      message: `cannot read the service's program from ${p.file}: ${p.error}`,
      fix: 'linuxkitctl install writes it',
    };
  const node = p.argv[0] ?? '';
  if (!p.nodeExecutable) {
    return {
      id: 'service-program',
      ok: false,
      message: `${programField(p)} is ${node}, which does not exist or is not executable: the service cannot start (was node upgraded or garbage-collected?)`,
      fix: 'run linuxkitctl install again from a shell whose PATH finds node: it records the node found on PATH',
    };
  }
  const versioned = versionedNodeProblem(node);
  if (versioned)
    return {
      id: 'service-program',
      ok: true,
      warning: true,
      message: `${programField(p)}: ${versioned.message}`,
      fix: versioned.fix,
    };
  return { id: 'service-program', ok: true, message: `the service runs ${node} (${programField(p)})` };
}

/** macOS only: null elsewhere (no such protection). */
export function macosPrivacyCheck(f: HostCheckFacts): CheckResult | null {
  if (f.platform !== 'darwin') return null;
  const p = f.serviceProgram;
  if (!p.ok)
    return {
      id: 'macos-privacy',
      ok: true,
      skipped: true,
      message: 'not checked: the service file is unreadable (see service-program)',
    };
  const paths = [...new Set([...p.argv.slice(0, 2), ...p.resolved])];
  const finding = protectedPathFinding({ paths, home: f.home, platform: f.platform });
  if (finding) return { id: 'macos-privacy', ok: false, message: finding.message, fix: finding.fix };
  return {
    id: 'macos-privacy',
    ok: true,
    message:
      'node and main.js lie outside the folders macOS keeps from launchd jobs (Desktop, Documents, Downloads, /Volumes)',
  };
}

export function sshPortCheck(f: HostCheckFacts): CheckResult {
  const v = judgeSshPort(f.sshPort);
  return v.ok
    ? { id: 'ssh-port', ok: true, message: v.message }
    : { id: 'ssh-port', ok: false, message: v.message, fix: v.fix };
}
