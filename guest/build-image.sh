#!/usr/bin/env bash
# Builds the builder VM's guest image (OUTDIR/kernel, OUTDIR/initrd, OUTDIR/manifest.json) from
# whole files of Debian packages: the Debian kernel and a few of its modules, busybox-static,
# dropbear-bin, nix-bin, e2fsprogs' mke2fs and the libraries they load, plus guest/init and
# guest/rootfs.
#   --arch x86_64 (on an amd64 host): the packages installed on this machine. Nothing is downloaded.
#   --arch aarch64: Debian's arm64 packages (the cloud-flavour kernel), fetched and unpacked by
#     guest/arm64/fetch-packages.sh into --packages-dir, never installed or run on this host.
#
# usage: build-image.sh OUTDIR [--arch x86_64|aarch64] [--kernel-version VER] [--initrd-compression none|lz4]
#                              [--packages-dir DIR]
#        build-image.sh --print-inputs [--arch x86_64|aarch64] [--kernel-version VER] [--packages-dir DIR]
# --print-inputs prints what the image is made of (package versions, kernel checksum) without
# building; the daemon hashes that output, with this folder's files, to name its image cache.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "build-image: error: $*" >&2; exit 1; }

outdir= arch=x86_64 kver= print_inputs=0 compression=none packages_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --packages-dir) packages_dir=${2:?--packages-dir needs a value}; shift 2 ;;
    --packages-dir=*) packages_dir=${1#*=}; shift ;;
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    --arch=*) arch=${1#*=}; shift ;;
    --kernel-version) kver=${2:?--kernel-version needs a value}; shift 2 ;;
    --kernel-version=*) kver=${1#*=}; shift ;;
    --initrd-compression) compression=${2:?--initrd-compression needs a value}; shift 2 ;;
    --initrd-compression=*) compression=${1#*=}; shift ;;
    --print-inputs) print_inputs=1; shift ;;
    -*) die "unknown option $1 (expected --arch, --kernel-version, --initrd-compression, --packages-dir or --print-inputs)" ;;
    *) [ -z "$outdir" ] || die "more than one OUTDIR given ($outdir, $1)"; outdir=$1; shift ;;
  esac
done
case $compression in none|lz4) ;; *) die "--initrd-compression $compression: expected none or lz4" ;; esac
case $arch in x86_64|aarch64) ;; *) die "--arch $arch: expected x86_64 or aarch64" ;; esac
[ "$print_inputs" = 1 ] || [ -n "$outdir" ] || die "usage: build-image.sh OUTDIR [--arch x86_64|aarch64] [--kernel-version VER]"
command -v dpkg-query >/dev/null || die "dpkg-query not found: the image is built from Debian packages"

# What each architecture's image is made of. Everything below works on these:
#   src        the root the files come from: / (installed packages) or the unpacked arm64 packages
#   vmlinuz    the kernel package's kernel; moddir its modules; kver its version
#   copies     "path-in-src" entries copied to the same path in the guest (symlinks followed)
#   busybox    busybox-static's binary; applets: "dir/name" lines for its links in the guest
#   versions   "package version" lines of every package a file comes from
# Modules by name, loaded by /init in dependency order; disk modules only with linuxkit.disk.
# crc32c_generic is a soft dependency of ext4/jbd2 (modules.softdep), which modules.dep omits.
# Modules built into the kernel (modules.builtin) are left out by name.
disk_modules=(virtio_blk crc32c_generic ext4)
copies=() applets=() versions=()
case $arch in
  x86_64)
    [ "$(dpkg --print-architecture)" = amd64 ] || die "an x86_64 image needs an amd64 Debian host (this one is $(dpkg --print-architecture))"
    src=
    # The base kernel command line; the daemon appends linuxkit.disk=/dev/vda for a disk (see init).
    # Under tcg, tsc=reliable (skip the TSC checks and use it as the clocksource instead of HPET
    # MMIO), lpj= (skip the secondary CPU's delay-loop calibration; delays use the TSC anyway) and
    # cryptomgr.notests (skip crypto self-tests) each save a fraction of a second of boot.
    cmdline="console=ttyS0 quiet panic=-1 tsc=reliable lpj=8400000 cryptomgr.notests"
    # The ACPI power button (QMP system_powerdown) reaches busybox acpid through button + evdev.
    base_modules=(virtio_pci virtio_net virtio-rng qemu_fw_cfg evdev button)
    ;;
  aarch64)
    command -v readelf >/dev/null || die "readelf not found: install binutils (guest/arm64/fetch-packages.sh reads ELF headers with it)"
    command -v modinfo >/dev/null || die "modinfo not found: install kmod"
    # The PL011 UART of QEMU's virt machine. No tsc/lpj switches: the arm64 kernel reads the
    # generic timer's frequency instead of calibrating.
    cmdline="console=ttyAMA0 quiet panic=-1 cryptomgr.notests"
    # No ACPI with a device-tree boot, and no input device in the cloud kernel: the power
    # button is a PL061 GPIO line that /init watches itself (see init), so no evdev either.
    base_modules=(virtio_pci virtio_net virtio-rng qemu_fw_cfg)
    ;;
esac

if [ "$arch" = x86_64 ]; then
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
else
  # The arm64 packages, unpacked into $packages_dir/root by fetch-packages.sh. Its run reads the
  # apt lists and every package's file list (seconds even with everything cached), so its
  # result is reused while the inputs that decide it (the arm64 package lists, apt's sources and
  # preferences, the script itself) are unchanged.
  packages_dir=${packages_dir:-${XDG_CACHE_HOME:-$HOME/.cache}/linuxkit-nix/arm64-packages}
  mkdir -p "$packages_dir"
  packages_dir=$(cd "$packages_dir" && pwd)
  fetch_key() {
    local lists
    lists=$(apt-config shell d Dir::State::Lists/d | sed -n "s/^d='\(.*\)'$/\1/p")
    lists=${lists:-/var/lib/apt/lists/}
    {
      sha256sum "$here/arm64/fetch-packages.sh"
      cat /etc/apt/sources.list /etc/apt/sources.list.d/* /etc/apt/preferences /etc/apt/preferences.d/* 2>/dev/null || true
      sha256sum "${lists%/}"/*_binary-arm64_Packages* 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1
  }
  # One build-image decides about fetching at a time; then builds share the lock. fetch-packages.sh
  # holds its download cache's lock (<dir>/debs/.lock) exclusively while it runs, and may replace
  # root/ then: a shared hold of that lock keeps a run started elsewhere from doing so under us.
  exec 8>"$packages_dir/.build-image.lock"
  flock 8
  mkdir -p "$packages_dir/debs"
  exec 7>"$packages_dir/debs/.lock"
  flock -s 7
  if [ ! -s "$packages_dir/files.txt" ] || [ ! -s "$packages_dir/packages.txt" ] || [ ! -d "$packages_dir/root" ] ||
    [ "$(cat "$packages_dir/.fetch-key" 2>/dev/null)" != "$(fetch_key)" ]; then
    echo "build-image: fetching the arm64 packages into $packages_dir" >&2
    flock -u 7
    bash "$here/arm64/fetch-packages.sh" "$packages_dir" >/dev/null 7>&- 8>&- || die "guest/arm64/fetch-packages.sh $packages_dir failed"
    flock -s 7
    fetch_key > "$packages_dir/.fetch-key"
  fi
  flock -s 8
  src=$packages_dir/root
  fetched_kver=$(sed -n 's/^kernel-version //p' "$packages_dir/files.txt")
  [ -z "$kver" ] || [ "$kver" = "$fetched_kver" ] ||
    die "--kernel-version $kver: the arm64 packages have kernel $fetched_kver"
  kver=$fetched_kver
  vmlinuz=$src/$(sed -n 's/^kernel //p' "$packages_dir/files.txt")
  moddir=$src/lib/modules/$kver
  [ -r "$vmlinuz" ] || die "$vmlinuz is missing (rerun guest/arm64/fetch-packages.sh $packages_dir)"
  [ -d "$moddir" ] || die "$moddir is missing (kernel $kver)"
fi

# The modules.dep line of a module: "path: dep-path ..." (paths relative to $moddir), or nothing.
# The arm64 kernel package ships no modules.dep (its postinst runs depmod): there the dependencies
# of the few modules taken are read from each module's own .modinfo (modinfo reads any ELF).
module_line() {
  local name=$1 pattern file deps dep out
  # File names spell "_" or "-" either way (virtio-rng.ko is module virtio_rng).
  pattern=${name//_/[-_]}
  if [ -f "$moddir/modules.dep" ]; then
    grep -m1 -E "(^|/)${pattern}\.ko[^/:]*:" "$moddir/modules.dep" || true
    return
  fi
  file=$(cd "$moddir" && find kernel -name "$name.ko*" -o -name "${name//_/-}.ko*" -o -name "${name//-/_}.ko*" | sort | head -n1)
  [ -n "$file" ] || return 0
  out="$file:"
  deps=$(modinfo -F depends "$moddir/$file") || die "modinfo cannot read $moddir/$file"
  for dep in ${deps//,/ }; do
    dep=$(cd "$moddir" && find kernel -name "$dep.ko*" -o -name "${dep//_/-}.ko*" | sort | head -n1)
    [ -n "$dep" ] || die "kernel module $file depends on a module that is not in $moddir"
    out+=" $dep"
  done
  echo "$out"
}
is_builtin() {
  local pattern=${1//[-_]/[-_]}
  [ -f "$moddir/modules.builtin" ] && grep -qE "(^|/)${pattern}\.ko$" "$moddir/modules.builtin"
}

# Appends to $resolved the modules.dep paths of a module and its dependencies, dependencies first,
# each once across both lists (insmod of a loaded module fails).
declare -A modseen=()
resolved=()
resolve_module() {
  local name=${1//-/_} line dep
  [ -z "${modseen[$name]:-}" ] || return 0
  modseen[$name]=1
  line=$(module_line "$name")
  if [ -z "$line" ]; then
    is_builtin "$name" && return 0
    die "kernel module $1 is neither in $moddir nor built into kernel $kver"
  fi
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

if [ "$arch" = x86_64 ]; then
  # Programs whose whole ldd closure goes in; Nix also dlopens the NSS modules at run time.
  programs=(/usr/bin/nix /usr/sbin/dropbear /usr/bin/dropbearconvert /sbin/mke2fs)
  busybox=/bin/busybox
  dlopened=(libnss_dns.so.2 libnss_files.so.2)

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
  copies=("${programs[@]}" "${libs[@]}")
  # nix-store, nix-daemon, ... are symlinks to nix that pick their personality from their name.
  mapfile -t nix_links < <(dpkg-query -L nix-bin | grep '^/usr/bin/')
  mke2fs_conf=/etc/mke2fs.conf
else
  # fetch-packages.sh's files.txt names what to take, as paths inside the unpacked packages: the
  # programs, the libraries at the paths the loader looks them up by, and the loader itself.
  busybox=
  while read -r kind path; do
    case $kind in
      program) if [ "$path" = bin/busybox ]; then busybox=$src/$path; else copies+=("/$path"); fi ;;
      lib|interp) copies+=("/$path") ;;
    esac
  done < "$packages_dir/files.txt"
  [ -n "$busybox" ] || die "$packages_dir/files.txt names no bin/busybox"
  for f in "${copies[@]}"; do [ -e "$src$f" ] || die "$src$f is missing (rerun guest/arm64/fetch-packages.sh $packages_dir)"; done
  mapfile -t versions < "$packages_dir/packages.txt"
  nix_links=()
  for f in "$src"/usr/bin/*; do [ -L "$f" ] && nix_links+=("${f#"$src"}"); done
  mke2fs_conf=/etc/mke2fs.conf
  [ -f "$src$mke2fs_conf" ] || die "$src$mke2fs_conf is missing (from e2fsprogs)"
fi

# busybox's applets, as "dir/name" lines for the links to make. Its own --list-full says where
# each goes; an arm64 binary cannot run here, so its applet names are read from its sorted,
# NUL-separated name table (which starts with "[" and "[["), and the links all go to /usr/bin,
# with /usr/sbin/modprobe where the kernel looks for it.
if [ "$arch" = x86_64 ]; then
  mapfile -t applets < <("$busybox" --list-full)
else
  offset=$(grep -m1 -obUaP '\x00\[\x00\[\[\x00' "$busybox" | cut -d: -f1)
  [ -n "$offset" ] || die "cannot find the applet table in $busybox"
  mapfile -t applets < <(tail -c "+$((offset + 2))" "$busybox" | head -c 65536 | tr '\0' '\n' |
    awk '!/^[][a-z0-9_.-]+$/ { exit } { print "usr/bin/" $0 }')
  [[ " ${applets[*]} " == *" usr/bin/sh "* ]] && [ "${#applets[@]}" -gt 100 ] ||
    die "the applet table in $busybox does not look like one (${#applets[@]} names, sh among them or not)"
  [[ " ${applets[*]} " != *" usr/bin/modprobe "* ]] || applets+=(usr/sbin/modprobe)
fi

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
install_file() { # path in $src (symlinks followed) → same path in the guest
  local dest
  dest=$root$(guest_path "$1")
  mkdir -p "$(dirname "$dest")"
  cp -L --preserve=mode "$src$1" "$dest"
}

for f in "${copies[@]}"; do install_file "$f"; done
# nix-store, nix-daemon, ... are symlinks to nix that pick their personality from their name.
for f in "${nix_links[@]}"; do
  if [ -L "$src$f" ] && [ "$(readlink "$src$f")" = nix ]; then ln -s nix "$root/usr/bin/${f##*/}"; fi
done
install -D -m 0644 "$src$mke2fs_conf" "$root/etc/mke2fs.conf"

# busybox picks its applet from argv[0]; real programs (mke2fs) win over its applets.
install -m 0755 "$busybox" "$root/usr/bin/busybox"
for applet in "${applets[@]}"; do
  case $applet in bin/*|usr/bin/*) dir=usr/bin ;; sbin/*|usr/sbin/*) dir=usr/sbin ;; *) continue ;; esac
  dest=$root/$dir/${applet##*/}
  [ -e "$dest" ] || [ -L "$dest" ] || ln -s /usr/bin/busybox "$dest"
done

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
if [ "$arch" = x86_64 ]; then
  # QEMU boots an ELF kernel only through its PVH entry (CONFIG_PVH); else keep the bzImage.
  if grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null && extract_vmlinux; then
    mv "$work/vmlinux" "$outdir/kernel"
    kernel_format=vmlinux-pvh
  else
    cp "$vmlinuz" "$outdir/kernel"
    kernel_format=bzImage
  fi
else
  # arm64: QEMU loads the kernel's Image format (magic "ARM\x64" at byte 56) directly; Debian
  # ships it uncompressed, and a gzipped one is unpacked here rather than by QEMU at each boot.
  if [ "$(head -c 2 "$vmlinuz" | od -An -tx1 | tr -d ' \n')" = 1f8b ]; then
    gzip -dc "$vmlinuz" > "$outdir/kernel"
  else
    cp "$vmlinuz" "$outdir/kernel"
  fi
  [ "$(tail -c +57 "$outdir/kernel" | head -c 4 | od -An -tx1 | tr -d ' \n')" = 41524d64 ] ||
    die "$vmlinuz is not an arm64 Image (no ARM\\x64 magic at byte 56)"
  kernel_format=Image
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
