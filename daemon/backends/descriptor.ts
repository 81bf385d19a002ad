// A backend described once, as data and a factory. Config schema, API schema, automatic choice,
// doctor and the CLI read descriptors from registry.ts; nothing outside daemon/backends/ names a
// backend. A descriptor module holds data only and loads its backend lazily in create(), so
// the CLI can read the registry without loading any hypervisor code.
import type { Accelerator, Backend, GuestArch } from '../backend.js';
import type { KernelFormat } from '../image/debian/kernel-form.js';
import type { BackendLog } from './common/backend-log.js';

/** A platform and the machine architectures (process.arch spelling) the backend runs on there. */
export interface HostRule {
  platform: NodeJS.Platform;
  machineArchs: readonly string[];
  /** How people call such a host, for messages: "Intel Macs". */
  label: string;
}

/** How files (the SSH keys) reach the guest at boot. */
export type GuestFilesMethod = 'fw_cfg' | 'initrd-append';

export interface BackendDeps {
  log: BackendLog;
}

export interface BackendDescriptor {
  readonly name: string;
  /** One line for help texts and docs. */
  readonly summary: string;
  readonly hosts: readonly HostRule[];
  readonly guestArchs: readonly GuestArch[];
  /** The accelerators it can use, in the order `accel: auto` tries them. */
  readonly accelerators: readonly Accelerator[];
  readonly guestFiles: GuestFilesMethod;
  /** The kernel file the hypervisor loads, from those the guest image carries. */
  readonly kernelForm: Readonly<Partial<Record<GuestArch, KernelFormat>>>;
  /** The executables it needs on PATH to boot a guest of `arch`. */
  hostTools(arch: GuestArch): string[];
  /** How to get those tools, for doctor's fix. */
  readonly installHint: string;
  /** Among the backends that fit the host, `backend: auto` takes the lowest rank. */
  readonly autoRank: number;
  /** Why auto prefers it where it fits ("uses Hypervisor.framework directly"). */
  readonly autoWhy: string;
  create(deps: BackendDeps): Promise<Backend>;
}
