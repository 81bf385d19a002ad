// HyperKit with vpnkit: Intel Macs only, x86_64 guests, always Hypervisor.framework.
import type { BackendDescriptor } from '../descriptor.js';

export const hyperkitDescriptor: BackendDescriptor = {
  name: 'hyperkit',
  summary: 'HyperKit and vpnkit on Intel Macs; hvf',
  hosts: [{ platform: 'darwin', machineArchs: ['x64'], label: 'Intel Macs' }],
  guestArchs: ['x86_64'],
  accelerators: ['hvf'],
  // The keys are appended to the initrd as a second cpio archive (guest-files.ts).
  guestFiles: 'initrd-append',
  kernelForm: { x86_64: 'bzImage' },
  hostTools: () => ['hyperkit', 'vpnkit'],
  installHint:
    'install hyperkit and vpnkit (Homebrew has hyperkit; vpnkit ships with Docker Desktop and in its GitHub releases)',
  autoRank: 0,
  autoWhy: 'Hypervisor.framework without QEMU, with hyperkit and vpnkit installed',
  async create(deps) {
    const { HyperkitBackend } = await import('./hyperkit-backend.js');
    return new HyperkitBackend({ log: deps.log });
  },
};
