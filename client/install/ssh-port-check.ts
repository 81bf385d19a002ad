// Is the builder's SSH port free for its VM? Install refuses and doctor fails when another
// program listens there (nixpkgs' and nix-darwin's linux-builder use 31022, for one), naming
// who. This builder's own VM (QEMU, or the daemon: its on-demand endpoint, or its vsock bridge for HyperKit) holding it is
// what should be there. judgeSshPort is pure; gatherSshPortFacts reads the machine.
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { STATE_LAYOUT } from '../../daemon/config/paths.js';
import { describeHolder, findPortHolders, tryBind, type PortBind, type PortHolders } from './port-holders.js';
import type { CommandRunner } from './run-command.js';

export interface SshPortFacts {
  port: number;
  bind: PortBind;
  /** Who listens on the port; only looked up when it is taken. */
  holders: PortHolders | null;
  /** This builder's processes that may hold the port: its VM (vm.json) and its daemon (daemon.lock). */
  own: { vmPid: number | null; daemonPid: number | null };
  /** How the port is chosen, for the fix: "linuxkitctl install --ssh-port N" with --builder when named. */
  configPath: string;
  builder: string | null;
}

export type SshPortVerdict = { ok: true; message: string } | { ok: false; message: string; fix: string };

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export function judgeSshPort(f: SshPortFacts, alive: (pid: number) => boolean = pidAlive): SshPortVerdict {
  const where = `127.0.0.1:${f.port}`;
  const builderFlag = f.builder === null ? '' : ` --builder ${f.builder}`;
  const choose = `choose another port: linuxkitctl install${builderFlag} --ssh-port N (it sets sshPort in ${f.configPath})`;
  if (f.bind.free) return { ok: true, message: `the SSH port ${where} is free for the builder's VM` };
  if (f.bind.code !== 'EADDRINUSE') {
    return { ok: false, message: `cannot listen on ${where}: ${f.bind.code}`, fix: choose };
  }
  const holders = f.holders?.holders ?? [];
  const ownPids = [f.own.vmPid, f.own.daemonPid].filter((p): p is number => p !== null);
  const own = holders.find((h) => h.pid !== null && ownPids.includes(h.pid));
  if (own) {
    const who =
      own.pid === f.own.vmPid
        ? "this builder's VM"
        : "this builder's daemon (its on-demand SSH endpoint or HyperKit SSH bridge)";
    return { ok: true, message: `the SSH port ${where} is held by ${who}, ${describeHolder(own)}` };
  }
  const named = holders.filter((h) => h.pid !== null);
  if (named.length > 0) {
    return {
      ok: false,
      message: `the SSH port ${where} is taken by ${named.map(describeHolder).join(' and ')}, not by this builder's VM: the VM cannot listen there (nix-darwin's and nixpkgs' linux-builder use 31022)`,
      fix: `stop that program, or ${choose}`,
    };
  }
  const gap = f.holders?.gap ? ` (${f.holders.gap})` : '';
  const hidden =
    holders.length > 0 ? `${holders.map(describeHolder).join(' and ')}` : 'a process that could not be found';
  // The holder is hidden from this user, but this builder's VM is alive: most likely it is the one.
  const liveVm = f.own.vmPid !== null && alive(f.own.vmPid) ? f.own.vmPid : null;
  if (liveVm !== null)
    return {
      ok: true,
      message: `the SSH port ${where} is held by ${hidden}; this builder's VM (pid ${liveVm}) runs, so most likely by it${gap}`,
    };
  return {
    ok: false,
    message: `the SSH port ${where} is taken by ${hidden}${gap}`,
    fix: `find it with: sudo lsof -nP -iTCP:${f.port} -sTCP:LISTEN; stop it, or ${choose}`,
  };
}

async function pidFrom(file: string, pick: (text: string) => unknown): Promise<number | null> {
  try {
    const value = pick(await readFile(file, 'utf8'));
    return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : null;
  } catch {
    return null;
  }
}

export async function gatherSshPortFacts(input: {
  port: number;
  stateDir: string;
  configPath: string;
  builder: string | null;
  runner: CommandRunner;
  /** A pid the daemon reported (GET /v1/status vm.pid), readable when vm.json is not. */
  reportedVmPid?: number | null;
}): Promise<SshPortFacts> {
  const bind = await tryBind(input.port);
  const platform = process.platform === 'linux' ? 'linux' : 'darwin';
  const holders = bind.free ? null : await findPortHolders(input.port, platform, input.runner);
  const vmPid =
    (await pidFrom(
      path.join(input.stateDir, STATE_LAYOUT.vmRecord),
      (t) => (JSON.parse(t) as { pid?: unknown }).pid,
    )) ??
    input.reportedVmPid ??
    null;
  const daemonPid = await pidFrom(path.join(input.stateDir, STATE_LAYOUT.lock), (t) => Number(t.trim()));
  return {
    port: input.port,
    bind,
    holders,
    own: { vmPid, daemonPid },
    configPath: input.configPath,
    builder: input.builder,
  };
}
