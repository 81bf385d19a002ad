// Which hypervisor and accelerator to use, and why: a pure function of the settings and of what
// the host has, so `status` can explain the choice and the table can be tested anywhere.
import type { Accelerator, BackendName, GuestArch } from '../backend.js';

export interface HostFacts {
  platform: NodeJS.Platform;
  /** process.arch: 'x64' or 'arm64'. */
  hostArch: string;
  /** Both hyperkit and vpnkit were found. */
  hyperkitAvailable: boolean;
  /** /dev/kvm exists and is read-write for us. */
  kvmAvailable: boolean;
}

export interface BackendChoice {
  backend: BackendName;
  accel: Accelerator;
  reason: string;
}

export class BackendChoiceError extends Error {
  override readonly name = 'BackendChoiceError';
}

const NATIVE: Record<string, GuestArch> = { x64: 'x86_64', arm64: 'aarch64' };

export function chooseBackend(
  wanted: { backend: 'auto' | BackendName; accel: 'auto' | Accelerator; arch: GuestArch },
  host: HostFacts,
): BackendChoice {
  const native = NATIVE[host.hostArch] === wanted.arch;
  const intelMac = host.platform === 'darwin' && host.hostArch === 'x64';

  let backend: BackendName;
  let why: string;
  if (wanted.backend === 'hyperkit') {
    if (!intelMac) throw new BackendChoiceError(`backend hyperkit runs only on Intel macOS; this host is ${host.platform}/${host.hostArch}: use qemu or auto`);
    if (wanted.arch !== 'x86_64') throw new BackendChoiceError(`backend hyperkit boots only x86_64 guests; arch is ${wanted.arch}: use qemu`);
    if (!host.hyperkitAvailable) throw new BackendChoiceError('backend hyperkit was asked for but hyperkit or vpnkit is not on PATH');
    backend = 'hyperkit';
    why = 'backend hyperkit in the config';
  } else if (wanted.backend === 'qemu') {
    backend = 'qemu';
    why = 'backend qemu in the config';
  } else if (intelMac && host.hyperkitAvailable && wanted.arch === 'x86_64') {
    backend = 'hyperkit';
    why = 'auto: Intel Mac with hyperkit and vpnkit installed';
  } else {
    backend = 'qemu';
    why =
      host.platform === 'darwin'
        ? intelMac
          ? 'auto: Intel Mac without hyperkit/vpnkit'
          : 'auto: Apple Silicon, where hyperkit does not run'
        : `auto: ${host.platform} host`;
  }

  if (backend === 'hyperkit') {
    if (wanted.accel !== 'auto' && wanted.accel !== 'hvf') {
      throw new BackendChoiceError(`accel ${wanted.accel} is not available with hyperkit (it always uses hvf); use auto`);
    }
    return { backend, accel: 'hvf', reason: `${why}; hyperkit uses Hypervisor.framework` };
  }

  let accel: Accelerator;
  if (wanted.accel !== 'auto') {
    if (wanted.accel === 'hvf' && host.platform !== 'darwin') throw new BackendChoiceError(`accel hvf needs macOS; this host is ${host.platform}: use kvm, tcg or auto`);
    if (wanted.accel === 'kvm' && host.platform !== 'linux') throw new BackendChoiceError(`accel kvm needs Linux; this host is ${host.platform}: use hvf, tcg or auto`);
    if (wanted.accel !== 'tcg' && !native) throw new BackendChoiceError(`accel ${wanted.accel} cannot run an ${wanted.arch} guest on a ${host.hostArch} host: use tcg or auto`);
    if (wanted.accel === 'kvm' && !host.kvmAvailable) throw new BackendChoiceError('accel kvm was asked for but /dev/kvm is missing or not writable');
    accel = wanted.accel;
    why += `; accel ${accel} in the config`;
  } else if (!native) {
    accel = 'tcg';
    why += `; accel tcg: an ${wanted.arch} guest on a ${host.hostArch} host is emulated`;
  } else if (host.platform === 'darwin') {
    accel = 'hvf';
    why += '; accel hvf on macOS';
  } else if (host.platform === 'linux' && host.kvmAvailable) {
    accel = 'kvm';
    why += '; accel kvm: /dev/kvm is usable';
  } else {
    accel = 'tcg';
    why += '; accel tcg: no hardware acceleration found';
  }
  return { backend, accel, reason: why };
}
