// What the guest's /init (guest/init) and the host agree on: the files handed in at boot, the
// kernel command-line switches it reads, and the console lines it prints. Change both together.

/**
 * `VmSpec.guestFiles` keys. QEMU passes each as fw_cfg `opt/<key>` (the guest reads
 * `/sys/firmware/qemu_fw_cfg/by_name/opt/<key>/raw`); hyperkit appends them to the initrd, where
 * the guest finds `/<GUEST_FILES_INITRD_DIR>/<key>` (with GUEST_VSOCK_SWITCH).
 */
export const GUEST_FILES = {
  /** The client's OpenSSH public key line: root's authorized_keys. */
  authorizedKeys: 'linuxkit/authorized_keys',
  /** The host key as `ssh-keygen -t ed25519 -N ''` writes it (OpenSSH private key format). */
  hostKey: 'linuxkit/ssh_host_ed25519_key',
} as const;

/** The folder at the initramfs root that holds the guest files appended to the initrd. */
export const GUEST_FILES_INITRD_DIR = 'guest-files';

/**
 * The kernel command-line switch for hyperkit's way in: /init reads the keys from
 * `/guest-files` (there is no fw_cfg), listens for SSH on vsock port GUEST_VSOCK_SSH_PORT and
 * forwards it to dropbear on 127.0.0.1:22 only, and writes its console lines through /dev/kmsg
 * (time-stamped, which hyperkit's console ring is read back by). Without it: QEMU's way in (keys
 * from fw_cfg, dropbear on port 22 of every address, plain console lines).
 */
export const GUEST_VSOCK_SWITCH = 'linuxkit.ssh=vsock';

/** The guest's vsock port for SSH (the host connects to it through hyperkit's `connect` socket). */
export const GUEST_VSOCK_SSH_PORT = 22;

/**
 * Printed on the serial console once SSH answers: dropbear listens on port 22 and, with
 * GUEST_VSOCK_SWITCH, its SSH banner came back through the vsock forward.
 */
export const GUEST_READY_MARKER = 'linuxkit-nix: ssh ready';

/**
 * /init appends "<uptime seconds> <step>" here at each step of the boot (init, modules, network,
 * store, keys, nix-daemon (when it is started), sshd, with linuxkit.ssh=vsock also vsock, dhcp), for
 * bench/boot-breakdown.mjs.
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
  /** 'vsock': hyperkit's way in (GUEST_VSOCK_SWITCH). Absent: QEMU's. */
  ssh?: 'vsock';
  /** false: the kernel's NO_ASLR_SWITCH (see guestAslr in daemon/vm-spec.ts). Absent: on. */
  aslr?: boolean;
}

/** The kernel's own switch that turns address-space layout randomization off from the start. */
export const NO_ASLR_SWITCH = 'norandmaps';

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
  if (opts.ssh !== undefined) {
    if (opts.ssh !== 'vsock') {
      throw new Error(
        `ssh must be "vsock" (hyperkit's way in) or absent (QEMU's); got ${JSON.stringify(opts.ssh)}`,
      );
    }
    args.push(GUEST_VSOCK_SWITCH);
  }
  if (opts.aslr === false) args.push(NO_ASLR_SWITCH);
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
