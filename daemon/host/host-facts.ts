// What the machine can run, read in one place: its real CPU architecture (not the Node binary's:
// an x86_64 Node under Rosetta reports process.arch 'x64' on an Apple Silicon Mac), whether
// Hypervisor.framework is usable (kern.hv_support; 0 inside a macOS VM without nested
// virtualisation), whether /dev/kvm is usable, and where the hypervisors' tools are on PATH.
// Backend choice, config defaults and doctor all read these facts; tests pass their own probes.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { isAbsolute, join } from 'node:path';

export interface HostFacts {
  platform: NodeJS.Platform;
  /** The CPU's own architecture in process.arch spelling ('x64', 'arm64'). */
  machineArch: string;
  /** process.arch of this Node, which differs from machineArch under Rosetta. */
  processArch: string;
  /** This Node is an x86_64 binary translated by Rosetta (sysctl.proc_translated is 1). */
  rosetta: boolean;
  /** macOS: sysctl kern.hv_support is 1 (true) or 0 (false); null when unknown or not macOS. */
  hvSupport: boolean | null;
  /** Linux: /dev/kvm exists and is read-write for this user. */
  kvmUsable: boolean;
  /** Hardware accelerators that were tried and could not run a guest here, and why (accel-fallback.ts). */
  failedAccels?: Partial<Record<'hvf' | 'kvm', string>>;
  /** The tools asked about: executable name → its path on PATH, or null when missing. */
  tools: Record<string, string | null>;
}

/** The raw reads behind HostFacts, so a table test can stand in for any machine. */
export interface HostProbes {
  platform: NodeJS.Platform;
  processArch: string;
  /** `sysctl -n <name>` trimmed, or null when the name does not exist or sysctl fails. */
  sysctl(name: string): string | null;
  kvmUsable(): boolean;
  /** Absolute path of `bin` on PATH, or null. */
  which(bin: string): string | null;
}

/** Facts from probes: pure apart from what the probes read. */
export function hostFactsFrom(probes: HostProbes, toolNames: readonly string[] = []): HostFacts {
  const darwin = probes.platform === 'darwin';
  // proc_translated does not exist on Intel Macs before macOS 11: absent means not translated.
  const rosetta = darwin && probes.sysctl('sysctl.proc_translated') === '1';
  // hw.optional.arm64 is 1 on Apple Silicon whatever this process's own architecture is.
  const armMac = darwin && (rosetta || probes.sysctl('hw.optional.arm64') === '1');
  const hv = darwin ? probes.sysctl('kern.hv_support') : null;
  const tools: Record<string, string | null> = {};
  for (const name of toolNames) tools[name] = probes.which(name);
  return {
    platform: probes.platform,
    machineArch: armMac ? 'arm64' : probes.processArch,
    processArch: probes.processArch,
    rosetta,
    hvSupport: hv === '1' ? true : hv === '0' ? false : null,
    kvmUsable: probes.platform === 'linux' && probes.kvmUsable(),
    tools,
  };
}

/** Probes of the machine this process runs on; `pathEnv` is the PATH searched for tools. */
export function systemProbes(pathEnv: string | undefined = process.env.PATH): HostProbes {
  return {
    platform: process.platform,
    processArch: process.arch,
    sysctl(name) {
      try {
        return execFileSync('sysctl', ['-n', name], {
          encoding: 'utf8',
          timeout: 5000,
          stdio: ['ignore', 'pipe', 'ignore'],
        }).trim();
      } catch {
        return null;
      }
    },
    // LINUXKIT_KVM_DEVICE names another file to stand for /dev/kvm (QEMU still opens /dev/kvm):
    // how tests make auto pick a KVM that cannot run a guest on a machine without one.
    kvmUsable: () =>
      canAccess(process.env.LINUXKIT_KVM_DEVICE ?? '/dev/kvm', constants.R_OK | constants.W_OK),
    which(bin) {
      for (const dir of (pathEnv ?? '').split(':')) {
        if (isAbsolute(dir) && canAccess(join(dir, bin), constants.X_OK)) return join(dir, bin);
      }
      return null;
    },
  };
}

function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

let cached: Omit<HostFacts, 'tools'> | null = null;

/** This machine's facts; the architecture and virtualisation reads are made once per process. */
export function currentHostFacts(toolNames: readonly string[] = []): HostFacts {
  const probes = systemProbes();
  cached ??= hostFactsFrom(probes);
  const tools: Record<string, string | null> = {};
  for (const name of toolNames) tools[name] = probes.which(name);
  return { ...cached, tools };
}

/** "Apple Silicon Mac", "Intel Mac", "linux/x64 host", with Rosetta named when it is in play. */
export function describeHost(h: Pick<HostFacts, 'platform' | 'machineArch' | 'rosetta'>): string {
  if (h.platform !== 'darwin') return `${h.platform}/${h.machineArch} host`;
  const mac = h.machineArch === 'arm64' ? 'Apple Silicon Mac' : 'Intel Mac';
  return h.rosetta ? `${mac} (this Node runs under Rosetta)` : mac;
}
