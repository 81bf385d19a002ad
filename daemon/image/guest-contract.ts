// What the guest's /init (guest/init) and the host agree on: the files handed in at boot, the
// kernel command-line switches it reads, and the console lines it prints. Change both together.

/**
 * `VmSpec.guestFiles` keys (QEMU passes each as fw_cfg `opt/<key>`; the guest reads
 * `/sys/firmware/qemu_fw_cfg/by_name/opt/<key>/raw`).
 */
export const GUEST_FILES = {
  /** The client's OpenSSH public key line: root's authorized_keys. */
  authorizedKeys: 'linuxkit/authorized_keys',
  /** The host key as `ssh-keygen -t ed25519 -N ''` writes it (OpenSSH private key format). */
  hostKey: 'linuxkit/ssh_host_ed25519_key',
} as const;

/** Printed on the serial console once dropbear listens on port 22. */
export const GUEST_READY_MARKER = 'linuxkit-nix: ssh ready';

/**
 * /init appends "<uptime seconds> <step>" here at each step of the boot (init, modules, network,
 * store, keys, sshd, dhcp), for bench/boot-breakdown.mjs.
 */
export const GUEST_BOOT_TIMES = '/run/linuxkit-boot-times';

/** Start of the one line /init prints before powering off when it cannot finish booting. */
export const GUEST_ERROR_PREFIX = 'linuxkit-nix: error: ';

/** The block device the guest sees for `VmSpec.disk` (the first virtio-blk disk). */
export const GUEST_DISK_DEVICE = '/dev/vda';

export interface GuestBootOptions {
  /**
   * Block device holding the persistent store, mounted on /nix (formatted ext4 first when it
   * has no ext2/3/4 filesystem). Absent: the store lives in RAM.
   */
  disk?: string;
  /** Size of the in-RAM store (tmpfs `size=`: "50%", "2g"); the guest's default is 50%. */
  storeSize?: string;
}

const DEVICE = /^\/dev\/[A-Za-z0-9]+$/;
const SIZE = /^[0-9]+[kmgKMG%]?$/;

/** The image's base command line with this boot's switches appended. */
export function guestKernelCmdline(base: string, opts: GuestBootOptions = {}): string {
  const args = base.trim() === '' ? [] : [base.trim()];
  if (opts.disk !== undefined) {
    if (!DEVICE.test(opts.disk)) {
      throw new Error(
        `disk must be a device path like ${GUEST_DISK_DEVICE}; got ${JSON.stringify(opts.disk)}`,
      );
    }
    args.push(`linuxkit.disk=${opts.disk}`);
  }
  if (opts.storeSize !== undefined) {
    if (!SIZE.test(opts.storeSize)) {
      throw new Error(
        `storeSize must be a tmpfs size like "50%" or "2g"; got ${JSON.stringify(opts.storeSize)}`,
      );
    }
    args.push(`linuxkit.store_size=${opts.storeSize}`);
  }
  return args.join(' ');
}

/** The `linuxkit-nix: error: ...` message in console text, if /init printed one. */
export function guestBootError(consoleText: string): string | null {
  for (const line of consoleText.split(/\r?\n/)) {
    const at = line.indexOf(GUEST_ERROR_PREFIX);
    if (at >= 0) return line.slice(at + GUEST_ERROR_PREFIX.length).trim();
  }
  return null;
}
