// QEMU: every host, both guest architectures, hvf/kvm when the host has them, else emulation.
import type { BackendDescriptor } from '../descriptor.js';

export const qemuDescriptor: BackendDescriptor = {
  name: 'qemu',
  summary: 'QEMU on macOS and Linux; hvf, kvm or tcg',
  hosts: [
    { platform: 'darwin', machineArchs: ['x64', 'arm64'], label: 'macOS' },
    { platform: 'linux', machineArchs: ['x64', 'arm64'], label: 'Linux' },
  ],
  guestArchs: ['x86_64', 'aarch64'],
  accelerators: ['hvf', 'kvm', 'tcg'],
  guestFiles: 'fw_cfg',
  // x86_64: the ELF vmlinux through its PVH entry, ~3 s faster to boot under tcg than the bzImage.
  kernelForm: { x86_64: 'vmlinux', aarch64: 'Image' },
  hostTools: (arch) => [`qemu-system-${arch}`],
  installHint:
    'install QEMU (macOS: brew install qemu; Debian/Ubuntu: apt install qemu-system-x86 qemu-system-arm)',
  autoRank: 10,
  autoWhy: 'runs on every host',
  async create(deps) {
    const { QemuBackend } = await import('./qemu-backend.js');
    return new QemuBackend({ log: deps.log });
  },
};
