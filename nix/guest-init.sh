#!@shell@
# PID 1 of the builder VM under hyperkit (nix/guest-image.nix builds it into the initrd).
# Devices, network (vpnkit's DHCP), the Nix store, keys, sshd on 127.0.0.1:22 with a vsock
# listener on port 22 in front of it (the host daemon's bridge connects there through hyperkit's
# `connect` socket), acpid for the power button, a clock that follows the host after sleep.
# Every line goes through /dev/kmsg, so it reaches hyperkit's console ring with a printk time
# stamp: the host puts a wrapped ring back in order by those stamps. Any failure prints one
# "linuxkit-nix: error: ..." line and powers off, so the host sees the VM end, not a hang.
export PATH=/usr/sbin:/usr/bin
export HOME=/root
umask 022

mount -t devtmpfs -o mode=0755 devtmpfs /dev
exec </dev/console >/dev/console 2>&1

log() { echo "<5>linuxkit-nix: $*" > /dev/kmsg; }
fail() {
  echo "<3>linuxkit-nix: error: $*" > /dev/kmsg
  sync
  poweroff -f
  echo o > /proc/sysrq-trigger
  sleep 5
  exit 1
}

mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mkdir -p /dev/pts /dev/shm /run /tmp /root /mnt/disk
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts || fail "cannot mount /dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || fail "cannot mount /run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp || fail "cannot mount /tmp"
chmod 0700 /root

disk=
for arg in $(cat /proc/cmdline); do
  case $arg in linuxkit.disk=*) disk=${arg#*=} ;; esac
done

# virtio devices, the vsock transport hyperkit's virtio-sock speaks, and the ACPI power button.
for m in virtio_pci virtio_net virtio_rng virtio_blk vmw_vsock_virtio_transport evdev button ext4; do
  modprobe "$m" || fail "cannot load kernel module $m"
done

hostname -F /etc/hostname
syslogd -C64
acpid -c /etc/acpi -l /run/acpid.log || fail "cannot start acpid (power button handler)"

ip link set lo up
ip link set eth0 up || fail "no eth0: is the virtio-vpnkit device attached?"
udhcpc -i eth0 -s /etc/udhcpc/default.script -t 20 -T 1 -A 1 -n -S >/dev/null 2>&1 ||
  fail "no DHCP lease on eth0 from vpnkit"

# The store. The image's own paths (Nix, sshd, ...) are in the initrd's /nix/store; with a disk
# they are copied onto it (only the missing ones) before the disk's /nix hides the initrd's.
if [ -n "$disk" ]; then
  i=0
  while [ ! -b "$disk" ] && [ $i -lt 50 ]; do usleep 20000; i=$((i + 1)); done
  [ -b "$disk" ] || fail "linuxkit.disk=$disk: no such block device"
  magic=$(dd if="$disk" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')
  if [ "$magic" != 53ef ]; then
    log "formatting $disk (ext4) for the Nix store"
    mke2fs -q -F -t ext4 -L linuxkit-nix -E nodiscard "$disk" || fail "cannot format $disk"
  fi
  mount -t ext4 -o noatime "$disk" /mnt/disk || fail "cannot mount $disk"
  mkdir -p /mnt/disk/nix/store /mnt/disk/nix/var/nix /mnt/disk/nix/.tmp
  for p in $(cat /nix-closure); do
    [ -e "/mnt/disk$p" ] || cp -a "$p" "/mnt/disk$p" || fail "cannot copy $p to $disk"
  done
  mount --bind /mnt/disk/nix /nix || fail "cannot bind the disk's /nix on /nix"
  chmod 1777 /nix/.tmp
  mount --bind /nix/.tmp /tmp || fail "cannot bind /nix/.tmp on /tmp"
fi
mkdir -p /nix/var/nix
chmod 1775 /nix/store
# Registers the image's paths as valid (idempotent), so builds can use and keep them.
nix-store --load-db < /nix-registration || fail "cannot register the image's store paths"

# Keys: handed in by the host appended to the initrd (hyperkit has no fw_cfg).
gf=/guest-files/linuxkit
[ -r "$gf/authorized_keys" ] || fail "no client key handed in ($gf/authorized_keys): cannot allow any SSH login"
[ -r "$gf/ssh_host_ed25519_key" ] || fail "no host key handed in ($gf/ssh_host_ed25519_key)"
mkdir -p -m 0700 /root/.ssh /etc/dropbear
cat "$gf/authorized_keys" > /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
grep -q '^[a-z]' /root/.ssh/authorized_keys || fail "the client key handed in is not an OpenSSH public key line"
dropbearconvert openssh dropbear "$gf/ssh_host_ed25519_key" /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1 ||
  fail "the host key handed in is not an OpenSSH ed25519 private key"
rm -rf /guest-files

# sshd on loopback only: the only way in is the vsock listener in front of it.
dropbear -s -p 127.0.0.1:22 -W 2097152 -P /run/dropbear.pid -r /etc/dropbear/dropbear_ed25519_host_key ||
  fail "cannot start dropbear"
socat VSOCK-LISTEN:22,reuseaddr,fork TCP:127.0.0.1:22 &
i=0
until grep -q '^ *[0-9]*: 0100007F:0016 [0-9A-F]*:0000 0A' /proc/net/tcp 2>/dev/null; do
  [ $i -lt 250 ] || fail "dropbear did not listen on 127.0.0.1:22 within 5 s"
  usleep 20000
  i=$((i + 1))
done
kill -0 $! 2>/dev/null || fail "socat (the vsock listener on port 22) did not start"

# After the Mac sleeps the guest clock stays behind; hyperkit's RTC follows the host's clock.
(
  while sleep 30; do
    rtc=$(cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null) || continue
    now=$(date +%s)
    d=$((rtc - now))
    if [ "$d" -gt 2 ] || [ "$d" -lt -2 ]; then
      hwclock -u -s && log "clock set from the RTC (it was ${d} s off)"
    fi
  done
) &

log "ssh ready"
exec init
