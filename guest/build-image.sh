#!/usr/bin/env bash
# Builds the builder VM's guest image (OUTDIR/kernel, OUTDIR/initrd, OUTDIR/manifest.json) from
# whole files of Debian packages installed on this machine: the Debian kernel and a few of its
# modules, busybox-static, dropbear-bin, nix-bin, e2fsprogs' mke2fs and the libraries they load,
# plus guest/init and guest/rootfs. Nothing is downloaded.
#
# usage: build-image.sh OUTDIR [--arch x86_64] [--kernel-version VER] [--initrd-compression none|lz4]
#        build-image.sh --print-inputs [--arch x86_64] [--kernel-version VER]
# --print-inputs prints what the image is made of (package versions, kernel checksum) without
# building; the daemon hashes that output, with this folder's files, to name its image cache.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "build-image: error: $*" >&2; exit 1; }

outdir= arch=x86_64 kver= print_inputs=0 compression=none
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    --arch=*) arch=${1#*=}; shift ;;
    --kernel-version) kver=${2:?--kernel-version needs a value}; shift 2 ;;
    --kernel-version=*) kver=${1#*=}; shift ;;
    --initrd-compression) compression=${2:?--initrd-compression needs a value}; shift 2 ;;
    --initrd-compression=*) compression=${1#*=}; shift ;;
    --print-inputs) print_inputs=1; shift ;;
    -*) die "unknown option $1 (expected --arch, --kernel-version, --initrd-compression or --print-inputs)" ;;
    *) [ -z "$outdir" ] || die "more than one OUTDIR given ($outdir, $1)"; outdir=$1; shift ;;
  esac
done
case $compression in none|lz4) ;; *) die "--initrd-compression $compression: expected none or lz4" ;; esac
[ "$arch" = x86_64 ] || die "--arch $arch is not supported: only x86_64 images are built here"
[ "$print_inputs" = 1 ] || [ -n "$outdir" ] || die "usage: build-image.sh OUTDIR [--arch x86_64] [--kernel-version VER]"
command -v dpkg-query >/dev/null || die "dpkg-query not found: the image is built from installed Debian packages"
[ "$(dpkg --print-architecture)" = amd64 ] || die "an x86_64 image needs an amd64 Debian host (this one is $(dpkg --print-architecture))"

# The base kernel command line; the daemon appends linuxkit.disk=/dev/vda for a disk (see init).
# Under tcg, tsc=reliable (skip the TSC checks and use it as the clocksource instead of HPET MMIO),
# lpj= (skip the secondary CPU's delay-loop calibration; delays use the TSC anyway) and
# cryptomgr.notests (skip crypto self-tests) each save a fraction of a second of boot.
cmdline="console=ttyS0 quiet panic=-1 tsc=reliable lpj=8400000 cryptomgr.notests"

# Kernel: the newest installed one that has its modules, unless one is named.
if [ -z "$kver" ]; then
  for f in $(ls /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
    v=${f#/boot/vmlinuz-}
    if [ -f "/lib/modules/$v/modules.dep" ]; then kver=$v; break; fi
  done
  [ -n "$kver" ] || die "no /boot/vmlinuz-* with /lib/modules/<version>/modules.dep: install linux-image-amd64"
fi
vmlinuz=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver
[ -r "$vmlinuz" ] || die "$vmlinuz is missing or unreadable"
[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep is missing (kernel $kver)"

# Modules by name, loaded by /init in dependency order. Disk modules load only with linuxkit.disk.
# crc32c_generic is a soft dependency of ext4/jbd2 (modules.softdep), which modules.dep omits.
base_modules=(virtio_pci virtio_net virtio-rng qemu_fw_cfg evdev button)
disk_modules=(virtio_blk crc32c_generic ext4)

# Programs whose whole ldd closure goes in; Nix also dlopens the NSS modules at run time.
programs=(/usr/bin/nix /usr/sbin/dropbear /usr/bin/dropbearconvert /sbin/mke2fs)
busybox=/bin/busybox
dlopened=(libnss_dns.so.2 libnss_files.so.2)

# Appends to $resolved the modules.dep paths of a module and its dependencies, dependencies first,
# each once across both lists (insmod of a loaded module fails).
declare -A modseen=()
resolved=()
resolve_module() {
  local name=${1//-/_} line dep
  [ -z "${modseen[$name]:-}" ] || return 0
  # File names spell "_" or "-" either way (virtio-rng.ko is module virtio_rng).
  line=$(grep -m1 -E "(^|/)${name//_/[-_]}\.ko[^/:]*:" "$moddir/modules.dep" || true)
  [ -n "$line" ] || die "kernel module $1 is not in $moddir/modules.dep (is it built in or named differently?)"
  modseen[$name]=1
  for dep in ${line#*:}; do
    dep=${dep##*/}; resolve_module "${dep%%.ko*}"
  done
  resolved+=("${line%%:*}")
}
for m in "${base_modules[@]}"; do resolve_module "$m"; done
base_list=${resolved[*]}
resolved=()
for m in "${disk_modules[@]}"; do resolve_module "$m"; done
disk_list=${resolved[*]}

# Shared libraries: "name-as-referenced" paths from ldd, the dynamic loader included.
libs=()
ldd_closure() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}
for p in "${programs[@]}"; do
  [ -x "$p" ] || die "$p is missing: install the Debian package that ships it (see scripts/install-deps.sh)"
  mapfile -t -O "${#libs[@]}" libs < <(ldd_closure "$p")
done
libc=$(ldd /usr/bin/nix | awk '$1 == "libc.so.6" { print $3 }')
[ -n "$libc" ] || die "cannot find libc.so.6 in the ldd output of /usr/bin/nix"
for l in "${dlopened[@]}"; do
  [ -e "$(dirname "$libc")/$l" ] || die "$(dirname "$libc")/$l is missing (part of libc6)"
  libs+=("$(dirname "$libc")/$l")
  mapfile -t -O "${#libs[@]}" libs < <(ldd_closure "$(dirname "$libc")/$l")
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)
[ -x "$busybox" ] && "$busybox" --list >/dev/null || die "$busybox is missing: install busybox-static"

files=("$vmlinuz" "$busybox" "${programs[@]}" "${libs[@]}" /etc/mke2fs.conf)
for m in $base_list $disk_list; do files+=("$moddir/$m"); done

# Which package owns each file, trying the /usr-merged and canonical spellings of its path,
# so that only whole files of installed packages go in.
declare -A owner=()
mapfile -t reals < <(readlink -f "${files[@]}")
other_spelling() { case $1 in /usr/*) echo "${1#/usr}" ;; *) echo "/usr$1" ;; esac; }
cands=()
for i in "${!files[@]}"; do
  cands+=("${files[$i]}" "$(other_spelling "${files[$i]}")" "${reals[$i]}" "$(other_spelling "${reals[$i]}")")
done
while IFS= read -r line; do
  case $line in diversion\ *) continue ;; esac
  owner["/${line#*: /}"]=${line%%: /*}
done < <(dpkg-query -S $(printf '%s\n' "${cands[@]}" | sort -u) 2>/dev/null || true)
declare -A pkgs=()
for i in "${!files[@]}"; do
  pkg=
  for c in "${cands[@]:$((i * 4)):4}"; do
    if [ -n "${owner[$c]:-}" ]; then pkg=${owner[$c]}; break; fi
  done
  [ -n "$pkg" ] || die "${files[$i]} belongs to no installed Debian package; the image takes only packaged files"
  pkgs[${pkg%%, *}]=1
done
mapfile -t versions < <(dpkg-query -W -f='${binary:Package} ${Version}\n' "${!pkgs[@]}" | sort)

if [ "$print_inputs" = 1 ]; then
  echo "arch $arch"
  echo "kernel $kver $(sha256sum < "$vmlinuz" | cut -d' ' -f1)"
  echo "cmdline $cmdline"
  printf 'module %s\n' $base_list $disk_list
  printf 'package %s\n' "${versions[@]}"
  exit 0
fi

command -v cpio >/dev/null || die "cpio not found: install cpio"
[ "$compression" = none ] || command -v lz4 >/dev/null || die "lz4 not found: install lz4"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
work=$(mktemp -d "$outdir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# Guest layout is /usr-merged whatever the host is: /bin, /sbin, /lib, /lib64 point into /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,run,tmp,root,nix,etc,var/log,mnt}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 700 "$root/root"
chmod 1777 "$root/tmp"
guest_path() { case $1 in /usr/*) echo "$1" ;; *) echo "/usr$1" ;; esac; }
install_file() { # host path (symlinks followed) → same path in the guest
  local dest
  dest=$root$(guest_path "$1")
  mkdir -p "$(dirname "$dest")"
  cp -L --preserve=mode "$1" "$dest"
}

for f in "${programs[@]}" "${libs[@]}"; do install_file "$f"; done
# nix-store, nix-daemon, ... are symlinks to nix that pick their personality from their name.
while IFS= read -r f; do
  if [ -L "$f" ] && [ "$(readlink "$f")" = nix ]; then ln -s nix "$root/usr/bin/${f##*/}"; fi
done < <(dpkg-query -L nix-bin | grep '^/usr/bin/')
install -D -m 0644 /etc/mke2fs.conf "$root/etc/mke2fs.conf"

# busybox picks its applet from argv[0]; real programs (mke2fs) win over its applets.
install -m 0755 "$busybox" "$root/usr/bin/busybox"
while IFS= read -r applet; do
  case $applet in bin/*|usr/bin/*) dir=usr/bin ;; sbin/*|usr/sbin/*) dir=usr/sbin ;; *) continue ;; esac
  dest=$root/$dir/${applet##*/}
  [ -e "$dest" ] || [ -L "$dest" ] || ln -s /usr/bin/busybox "$dest"
done < <("$busybox" --list-full)

# Kernel modules, uncompressed (busybox insmod reads plain .ko), and the load order /init follows.
mkdir -p "$root/usr/lib/modules/$kver" "$root/etc/linuxkit"
install_module() {
  local rel=$1 src=$moddir/$1 dest
  dest=$root/usr/lib/modules/$kver/${rel%.ko*}.ko
  mkdir -p "$(dirname "$dest")"
  case $rel in
    *.ko) cp "$src" "$dest" ;;
    *.ko.xz) xz -dc "$src" > "$dest" ;;
    *.ko.zst) zstd -q -dc "$src" > "$dest" ;;
    *.ko.gz) gzip -dc "$src" > "$dest" ;;
    *) die "unexpected module file $src" ;;
  esac
  echo "${rel%.ko*}.ko"
}
for m in $base_list; do install_module "$m"; done > "$root/etc/linuxkit/modules.base"
for m in $disk_list; do install_module "$m"; done > "$root/etc/linuxkit/modules.disk"

cp -R "$here/rootfs/." "$root/"
chmod 0600 "$root/etc/shadow"
install -m 0755 "$here/init" "$root/init"
echo "$kver" > "$root/etc/linuxkit/kernel-version"

# Kernel: QEMU boots an uncompressed ELF vmlinux through its PVH entry much faster under tcg than
# a bzImage that decompresses itself, so extract it the way the kernel's extract-vmlinux does.
extract_vmlinux() {
  local magic offset tool out=$work/vmlinux
  for magic in xz gzip zstd; do
    case $magic in
      xz) pat='\xfd7zXZ\x00'; tool="xz -dc --single-stream" ;;
      gzip) pat='\x1f\x8b\x08'; tool="gzip -dc" ;;
      zstd) pat='\x28\xb5\x2f\xfd'; tool="zstd -q -dc" ;;
    esac
    command -v "${tool%% *}" >/dev/null || continue
    for offset in $(grep -obUaP "$pat" "$vmlinuz" | cut -d: -f1); do
      tail -c "+$((offset + 1))" "$vmlinuz" | $tool > "$out" 2>/dev/null || true
      if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then return 0; fi
    done
  done
  return 1
}
# QEMU boots an ELF kernel only through its PVH entry (CONFIG_PVH); else keep the bzImage.
if grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null && extract_vmlinux; then
  mv "$work/vmlinux" "$outdir/kernel"
  kernel_format=vmlinux-pvh
else
  cp "$vmlinuz" "$outdir/kernel"
  kernel_format=bzImage
fi

# initramfs: newc cpio with root ownership. Uncompressed by default: under tcg the kernel copies
# it faster than it decompresses even lz4 (about 0.4 s less to boot, for 2x the bytes on disk).
# lz4 must be the legacy format (-l), the one the kernel's initramfs decompressor accepts.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --reproducible --quiet) > "$work/initrd.cpio"
case $compression in
  none) mv "$work/initrd.cpio" "$outdir/initrd"; unpacked_bytes=$(stat -c %s "$outdir/initrd") ;;
  lz4) lz4 -l -9 -q -f "$work/initrd.cpio" "$outdir/initrd"; unpacked_bytes=$(stat -c %s "$work/initrd.cpio") ;;
esac

kernel_bytes=$(stat -c %s "$outdir/kernel")
initrd_bytes=$(stat -c %s "$outdir/initrd")
{
  echo "{"
  echo "  \"arch\": \"$arch\","
  echo "  \"kernelVersion\": \"$kver\","
  echo "  \"cmdline\": \"$cmdline\","
  echo "  \"kernel\": { \"file\": \"kernel\", \"format\": \"$kernel_format\", \"bytes\": $kernel_bytes },"
  echo "  \"initrd\": { \"file\": \"initrd\", \"compression\": \"$([ "$compression" = lz4 ] && echo lz4-legacy || echo none)\", \"bytes\": $initrd_bytes, \"unpackedBytes\": $unpacked_bytes },"
  echo "  \"modules\": ["
  printf '    "%s",\n' $base_list $disk_list | sed '$ s/,$//'
  echo "  ],"
  echo "  \"packages\": {"
  printf '    "%s": "%s",\n' $(printf '%s\n' "${versions[@]}") | sed '$ s/,$//'
  echo "  },"
  echo "  \"builtAt\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\""
  echo "}"
} > "$outdir/manifest.json"
echo "build-image: kernel $kver ($kernel_format, $kernel_bytes bytes), initrd $initrd_bytes bytes ($unpacked_bytes unpacked) in $outdir" >&2
