# The builder VM's guest image for the hyperkit backend (Intel Macs): a bzImage kernel (hyperkit's
# kexec loader takes only bzImage), an initrd with busybox, dropbear, socat, kmod, e2fsprogs and
# Nix, and the kernel command line. Build it on any machine that can build x86_64-linux:
#
#   nix-build nix/guest-image.nix            # result/{bzImage,initrd,cmdline}
#
# Its /init is nix/guest-init.sh; the files it shares with the QEMU guest (accounts, DHCP hook,
# power-button handler, shutdown, nix.conf) come from guest/rootfs, so both guests behave alike.
# The host hands the keys in as /guest-files/linuxkit/{authorized_keys,ssh_host_ed25519_key},
# a cpio archive the hyperkit backend appends to this initrd.
{ pkgs ? import <nixpkgs> { system = "x86_64-linux"; } }:

let
  kernel = pkgs.linuxPackages.kernel;

  # What /init loads; modprobe finds dependencies (vsock, virtio_ring, ...) in modules.dep, and
  # a module built into this kernel is simply already there.
  modules = pkgs.makeModulesClosure {
    inherit kernel;
    firmware = [ ];
    allowMissing = true;
    rootModules = [
      "virtio_pci"
      "virtio_net"
      "virtio_rng"
      "virtio_blk"
      "vmw_vsock_virtio_transport"
      "evdev"
      "button"
      "ext4"
    ];
  };

  tools = [ pkgs.busybox pkgs.dropbear pkgs.socat pkgs.kmod pkgs.e2fsprogs pkgs.nix ];

  # /usr/bin and /usr/sbin in one: every program by name. dropbear's PATH for a remote command
  # holds /usr/bin, so `nix-store --serve` and `nix-daemon --stdio` are found over SSH. busybox
  # applets come first; the real programs (mke2fs, modprobe, ...) replace them.
  bin = pkgs.runCommand "linuxkit-nix-guest-bin" { } ''
    mkdir -p $out
    for t in ${builtins.concatStringsSep " " (map (p: "${p}/bin ${p}/sbin") tools)}; do
      [ -d "$t" ] || continue
      for f in "$t"/*; do ln -sfn "$f" "$out/''${f##*/}"; done
    done
  '';

  initScript = builtins.replaceStrings [ "@shell@" ] [ "${pkgs.busybox}/bin/sh" ] (builtins.readFile ./guest-init.sh);
  init = pkgs.writeScript "linuxkit-nix-init" initScript;

  # The store paths the image needs at run time, and their registration for the guest's Nix.
  closure = pkgs.closureInfo { rootPaths = [ bin init ]; };

  rootfs = ../guest/rootfs;
  etcFiles = [
    "passwd" "group" "shadow" "shells" "hosts" "hostname" "nsswitch.conf" "inittab"
    "nix/nix.conf" "udhcpc/default.script" "acpi/PWRF/00000080" "linuxkit/shutdown"
  ];

  initrd = pkgs.makeInitrd {
    name = "linuxkit-nix-hyperkit-initrd";
    compressor = "gzip";
    contents =
      [
        { object = init; symlink = "/init"; }
        { object = bin; symlink = "/usr/bin"; }
        { object = bin; symlink = "/usr/sbin"; }
        { object = bin; symlink = "/bin"; }
        { object = bin; symlink = "/sbin"; }
        { object = "${modules}/lib/modules"; symlink = "/lib/modules"; }
        { object = "${closure}/registration"; symlink = "/nix-registration"; }
        { object = "${closure}/store-paths"; symlink = "/nix-closure"; }
      ]
      ++ map (f: { object = "${rootfs}/etc/${f}"; symlink = "/etc/${f}"; }) etcFiles;
  };

  # printk.time and printk.devkmsg: every console line, the kernel's and /init's, carries a time
  # stamp, which the host uses to read a wrapped console ring in order. reboot=t turns a panic's
  # reboot into a triple fault (hyperkit exit 3): a crash the daemon backs off from, where a
  # plain reboot (exit 2) would be restarted at once, in a loop if the panic comes back.
  cmdline = "console=ttyS0 loglevel=6 printk.time=1 printk.devkmsg=on panic=1 reboot=t";
in
pkgs.runCommand "linuxkit-nix-hyperkit-guest" {
  passthru = { inherit kernel initrd init cmdline initScript etcFiles; };
} ''
  mkdir -p $out
  ln -s ${kernel}/bzImage $out/bzImage
  ln -s ${initrd}/initrd $out/initrd
  echo -n ${pkgs.lib.escapeShellArg cmdline} > $out/cmdline
''
