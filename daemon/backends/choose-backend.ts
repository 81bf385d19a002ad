// Which backend and accelerator to use, and why: a pure function of the settings, the host facts
// and the registry's descriptors, so `status` can explain the choice and a table can test it
// anywhere. Missing tools never make a named backend fail here: its start then says which
// executable it could not run, in status, instead of the daemon refusing to start.
import type { Accelerator, GuestArch } from '../backend.js';
import { describeHost, type HostFacts } from '../host/host-facts.js';
import type { BackendDescriptor } from './descriptor.js';
import { backendSettingChoices, findBackend, orList } from './backend-list.js';
import { BACKENDS } from './registry.js';

export interface BackendChoice {
  backend: string;
  accel: Accelerator;
  /** Why this backend and this accelerator, e.g. why tcg was a fallback. Shown in status. */
  reason: string;
}

export interface WantedBackend {
  backend: string;
  accel: 'auto' | Accelerator;
  arch: GuestArch;
}

export class BackendChoiceError extends Error {
  override readonly name = 'BackendChoiceError';
}

const NATIVE_GUEST: Record<string, GuestArch> = { x64: 'x86_64', arm64: 'aarch64' };
/** The platform each hardware accelerator exists on; tcg runs anywhere. */
const ACCEL_PLATFORM: Partial<Record<Accelerator, NodeJS.Platform>> = { hvf: 'darwin', kvm: 'linux' };

/** Why `accel` cannot run an `arch` guest on this host, or null when it can. */
export function accelProblem(accel: Accelerator, arch: GuestArch, host: HostFacts): string | null {
  const platform = ACCEL_PLATFORM[accel];
  if (platform === undefined) return null;
  if (host.platform !== platform)
    return `${accel} needs ${platform === 'darwin' ? 'macOS' : 'Linux'}; this host is ${host.platform}`;
  const failed = accel === 'tcg' ? undefined : host.failedAccels?.[accel];
  if (failed !== undefined) return `${accel} could not run a guest here (${failed})`;
  const native = NATIVE_GUEST[host.machineArch];
  if (native !== arch)
    return `${accel} cannot run an ${arch} guest on this ${describeHost(host)} (it runs only ${native ?? 'native'} guests)`;
  if (accel === 'hvf' && host.hvSupport === false) {
    return 'this Mac has no Hypervisor.framework support (sysctl kern.hv_support is 0, as inside a VM without nested virtualisation)';
  }
  if (accel === 'kvm' && !host.kvmUsable) return '/dev/kvm is missing or not writable';
  return null;
}

/** Why backend `d` cannot boot the wanted guest on this host (tools aside), or null. */
export function backendProblem(d: BackendDescriptor, wanted: WantedBackend, host: HostFacts): string | null {
  if (!d.hosts.some((h) => h.platform === host.platform && h.machineArchs.includes(host.machineArch))) {
    const here = describeHost(host);
    return `${d.name} runs only on ${orList(d.hosts.map((h) => h.label))}; this is ${/^[aeiou]/i.test(here) ? 'an' : 'a'} ${here}`;
  }
  if (!d.guestArchs.includes(wanted.arch))
    return `${d.name} boots only ${orList(d.guestArchs)} guests; arch is ${wanted.arch}`;
  if (wanted.accel !== 'auto' && !d.accelerators.includes(wanted.accel)) {
    return `accel ${wanted.accel} is not available with ${d.name} (it uses ${orList(d.accelerators)}): use auto`;
  }
  if (!d.accelerators.some((a) => accelProblem(a, wanted.arch, host) === null)) {
    return `${d.name} has no usable accelerator here: ${d.accelerators.map((a) => `${a}: ${accelProblem(a, wanted.arch, host)}`).join('; ')}`;
  }
  return null;
}

/** The tools `d` needs for `arch` that are not on PATH. */
export function missingTools(d: BackendDescriptor, arch: GuestArch, host: HostFacts): string[] {
  return d.hostTools(arch).filter((t) => !host.tools[t]);
}

function pickBackend(
  wanted: WantedBackend,
  host: HostFacts,
  registry: readonly BackendDescriptor[],
): { d: BackendDescriptor; why: string } {
  if (wanted.backend !== 'auto') {
    const d = findBackend(wanted.backend, registry);
    if (!d)
      throw new BackendChoiceError(
        `backend ${wanted.backend} is not known; use ${backendSettingChoices(registry)}`,
      );
    const problem = backendProblem(d, wanted, host);
    if (problem) throw new BackendChoiceError(`backend ${problem}`);
    return { d, why: `backend ${d.name} in the config` };
  }
  const ranked = [...registry].sort((a, b) => a.autoRank - b.autoRank);
  const fits = ranked.filter((d) => backendProblem(d, wanted, host) === null);
  const chosen = fits.find((d) => missingTools(d, wanted.arch, host).length === 0) ?? fits[0];
  if (!chosen) {
    const why = ranked.map((d) => backendProblem(d, wanted, host)).join('; ');
    throw new BackendChoiceError(
      `no backend can boot an ${wanted.arch} guest on this ${describeHost(host)}: ${why}`,
    );
  }
  // Say why each backend auto would have preferred was passed over.
  const passed = ranked
    .filter((d) => d.autoRank < chosen.autoRank)
    .map((d) => {
      const missing = missingTools(d, wanted.arch, host);
      return `${d.name}: ${backendProblem(d, wanted, host) ?? `${orList(missing)} not on PATH`}`;
    });
  const missing = missingTools(chosen, wanted.arch, host);
  const note = missing.length > 0 ? `; ${orList(missing)} not found on PATH` : '';
  const why = passed.length > 0 ? `passed over ${passed.join('; ')}` : chosen.autoWhy;
  return { d: chosen, why: `auto on this ${describeHost(host)}: ${chosen.name} (${why})${note}` };
}

export function chooseBackend(
  wanted: WantedBackend,
  host: HostFacts,
  registry: readonly BackendDescriptor[] = BACKENDS,
): BackendChoice {
  const { d, why } = pickBackend(wanted, host, registry);
  if (wanted.accel !== 'auto') {
    const problem = accelProblem(wanted.accel, wanted.arch, host);
    if (problem) {
      const usable = d.accelerators.filter((a) => accelProblem(a, wanted.arch, host) === null);
      throw new BackendChoiceError(
        `accel ${wanted.accel} cannot be used: ${problem}; use ${orList([...usable, 'auto'])}`,
      );
    }
    return { backend: d.name, accel: wanted.accel, reason: `${why}; accel ${wanted.accel} in the config` };
  }
  // Accelerators of another platform are not a fallback worth mentioning.
  const here = d.accelerators.filter((a) => (ACCEL_PLATFORM[a] ?? host.platform) === host.platform);
  const accel = here.find((a) => accelProblem(a, wanted.arch, host) === null)!;
  const skipped = here
    .slice(0, here.indexOf(accel))
    .map((a) => `${a} is not usable: ${accelProblem(a, wanted.arch, host)}`);
  const accelWhy =
    accel === 'tcg'
      ? `accel tcg, emulated${skipped.length > 0 ? `: ${skipped.join('; ')}` : ': no hardware accelerator on this host'}`
      : `accel ${accel}, hardware virtualisation`;
  return { backend: d.name, accel, reason: `${why}; ${accelWhy}` };
}
