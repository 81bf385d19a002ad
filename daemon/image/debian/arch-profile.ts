// What each guest architecture's image is made of: Debian's architecture name, the kernel
// metapackage, the seeds and programs, modules and the base kernel command line.
import { EM_AARCH64, EM_X86_64 } from './elf.js';

export type GuestArch = 'x86_64' | 'aarch64';

export interface ArchProfile {
  debArch: string;
  triplet: string;
  elfMachine: number;
  kernelMeta: string;
  cmdline: string;
  /** Loaded first: what eth0 needs, so DHCP starts while /init loads the rest. */
  netModules: string[];
  baseModules: string[];
  /**
   * Modules /init loads only with linuxkit.ssh=vsock (hyperkit's way in): the virtio vsock
   * transport, and vsock_loopback for its check that the forward on vsock port 22 answers.
   */
  vsockModules: string[];
}

/** Modules /init loads only with linuxkit.disk. crc32c_generic is ext4/jbd2's soft dependency. */
export const DISK_MODULES = ['virtio_blk', 'crc32c_generic', 'ext4'];
/** The packages the guest's files come from before the library closure adds its own. */
export const SEEDS = [
  'busybox-static',
  'dropbear-bin',
  'nix-bin',
  'e2fsprogs',
  'netcat-openbsd',
  'socat',
  'libc6',
];
/**
 * Dynamically linked programs, as Debian ships them (e2fsprogs keeps /sbin). nc.openbsd hands
 * ssh-ng sessions to the resident nix-daemon (guest/rootfs/usr/local/bin/nix-daemon).
 */
export const PROGRAMS = [
  'usr/bin/nix',
  'usr/sbin/dropbear',
  'usr/bin/dropbearconvert',
  'sbin/mke2fs',
  'bin/nc.openbsd',
  // Grows the store's ext4 when diskGiB was raised (guest/init).
  'sbin/resize2fs',
  // Forwards vsock port 22 to dropbear on 127.0.0.1:22 under hyperkit (guest/init).
  'usr/bin/socat',
];
/** Nix loads these with dlopen (getaddrinfo, getpwnam): DT_NEEDED never names them. */
export const DLOPENED = ['libnss_dns.so.2', 'libnss_files.so.2'];

export const ARCH_PROFILES: Record<GuestArch, ArchProfile> = {
  x86_64: {
    debArch: 'amd64',
    triplet: 'x86_64-linux-gnu',
    elfMachine: EM_X86_64,
    kernelMeta: 'linux-image-amd64',
    // Under tcg, tsc=reliable, lpj= and cryptomgr.notests each save a fraction of a second of boot;
    // no_timer_check: a busy host makes the bzImage's IO-APIC timer check fail and panic.
    cmdline: 'console=ttyS0 quiet panic=-1 tsc=reliable lpj=8400000 cryptomgr.notests no_timer_check',
    netModules: ['virtio_pci', 'virtio_net'],
    // The ACPI power button (QMP system_powerdown) reaches busybox acpid through button + evdev.
    // virtio_balloon: free page reporting hands memory the guest frees back to the host.
    baseModules: ['virtio-rng', 'virtio_balloon', 'qemu_fw_cfg', 'evdev', 'button'],
    vsockModules: [
      'vsock',
      'vmw_vsock_virtio_transport_common',
      'vmw_vsock_virtio_transport',
      'vsock_loopback',
    ],
  },
  aarch64: {
    debArch: 'arm64',
    triplet: 'aarch64-linux-gnu',
    elfMachine: EM_AARCH64,
    // The cloud flavour: a smaller kernel with the virtio drivers QEMU's virt machine needs.
    kernelMeta: 'linux-image-cloud-arm64',
    cmdline: 'console=ttyAMA0 quiet panic=-1 cryptomgr.notests',
    // No ACPI power button with a device-tree boot: /init watches the PL061 GPIO line itself.
    netModules: ['virtio_pci', 'virtio_net'],
    baseModules: ['virtio-rng', 'virtio_balloon', 'qemu_fw_cfg'],
    // hyperkit, the one backend that reaches SSH through vsock, boots only x86_64 guests.
    vsockModules: [],
  },
};
