#!/usr/bin/env bash
# Fetches the Debian arm64 packages the aarch64 builder VM's guest image is made of, without
# installing them on this (amd64) host: the cloud-flavour kernel, busybox-static, dropbear-bin,
# nix-bin, e2fsprogs (mke2fs for the store disk) and the shared libraries they load, found by
# reading DT_NEEDED (readelf; nothing arm64 is ever run) and looking each soname up among the
# files of the packages fetched so far, then among the Depends of the package that needs it.
#
# usage: fetch-packages.sh OUTDIR [CACHEDIR]
#   CACHEDIR (default OUTDIR/debs) keeps the .deb files and their file lists between runs.
# Writes:
#   OUTDIR/root/          every needed package unpacked with dpkg -x (rebuilt only when the set
#                         changes), with the kernel's modules.dep made by depmod
#   OUTDIR/packages.txt   "name version", sorted: the manifest to hash for the image cache
#   OUTDIR/files.txt      what the image takes from root/, one "kind path" a line (paths relative
#                         to root/): kernel, kernel-version, program, lib (the soname's path as the
#                         loader looks it up; may be a symlink), interp (the dynamic loader)
# and prints packages.txt on stdout.
#
# Needs root only the first time: to add the arm64 architecture to dpkg, run apt-get update when
# the arm64 package lists are missing, and download. A run whose packages are all in CACHEDIR
# downloads nothing.
set -euo pipefail
export LC_ALL=C
export PATH=$PATH:/usr/sbin:/sbin # depmod, for a user whose PATH lacks them

die() { echo "fetch-packages: error: $*" >&2; exit 1; }
log() { echo "fetch-packages: $*" >&2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: fetch-packages.sh OUTDIR [CACHEDIR]"
ARGS=("$@")
for tool in dpkg dpkg-deb apt-get apt-cache readelf flock depmod; do
  command -v "$tool" >/dev/null ||
    die "$tool not found: this script needs a Debian host with apt, dpkg, binutils and kmod"
done
mkdir -p "$1"
outdir=$(cd "$1" && pwd)
cache=${2:-$outdir/debs}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
mkdir -p "$cache/lists" "$cache/trees"

# One run at a time per cache (two image builds, or two test jobs, may share it).
exec 9>"$cache/.lock"
flock 9

ARCH=arm64
TRIPLET=aarch64-linux-gnu
KERNEL_META=linux-image-cloud-arm64
# What the guest runs, by package and path (as shipped: Debian's e2fsprogs keeps /sbin).
SEEDS=(busybox-static dropbear-bin nix-bin e2fsprogs libc6)
PROGRAMS=(usr/bin/nix usr/sbin/dropbear usr/bin/dropbearconvert sbin/mke2fs)
STATIC_PROGRAMS=(bin/busybox)
# Nix loads these with dlopen (getaddrinfo, getpwnam): DT_NEEDED never names them.
DLOPENED=(libnss_dns.so.2 libnss_files.so.2)

# --- apt: the arm64 architecture and its package lists -------------------------------------------
if ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
  [ "$(id -u)" = 0 ] || die "dpkg has no $ARCH architecture: run as root once (dpkg --add-architecture $ARCH)"
  log "adding the $ARCH architecture to dpkg"
  dpkg --add-architecture "$ARCH"
fi
lists_dir=$(apt-config shell d Dir::State::Lists/d | sed -n "s/^d='\(.*\)'$/\1/p")
lists_dir=${lists_dir:-/var/lib/apt/lists/}
if ! compgen -G "${lists_dir%/}/*_binary-${ARCH}_Packages*" >/dev/null; then
  [ "$(id -u)" = 0 ] || die "no $ARCH package lists in $lists_dir: run as root once (apt-get update)"
  log "no $ARCH package lists yet: apt-get update"
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
fi

# --- package metadata --------------------------------------------------------------------------
declare -A VER=() DEB_ARCH=() DEPS=() QUERIED=()
# Reads the candidate version, architecture and Depends/Pre-Depends (every alternative, without
# version constraints) of the named arm64 packages into VER, DEB_ARCH and DEPS. Each apt-cache
# call costs about a second (it loads both architectures' lists), so callers batch.
load_info() {
  local want=() p name field value
  for p in "$@"; do
    [ -z "${QUERIED[$p]:-}" ] || continue
    QUERIED[$p]=1
    want+=("$p:$ARCH")
  done
  [ ${#want[@]} -gt 0 ] || return 0
  while IFS=$'\t' read -r name field value; do
    case $field in
      Version) VER[$name]=$value ;;
      Architecture) DEB_ARCH[$name]=$value ;;
      Deps) DEPS[$name]=$value ;;
    esac
  done < <(apt-cache show --no-all-versions "${want[@]}" 2>/dev/null | awk '
    /^Package: / { name = $2 }
    /^Version: / { print name "\tVersion\t" $2 }
    /^Architecture: / { print name "\tArchitecture\t" $2 }
    /^(Pre-)?Depends: / {
      sub(/^[^:]*: /, ""); gsub(/\([^)]*\)/, ""); gsub(/:any/, ""); gsub(/[,|]/, " ")
      deps[name] = deps[name] " " $0
    }
    /^$/ && name != "" { print name "\tDeps\t" deps[name]; name = "" }
    END { if (name != "") print name "\tDeps\t" deps[name] }')
}
deb_name() { # the file name apt-get download gives the package's candidate version
  local name=$1
  DEB=${name}_${VER[$name]//:/%3a}_${DEB_ARCH[$name]}
}
# Downloads the named packages' candidate versions into the cache unless they are there already.
fetch() {
  local p missing=()
  load_info "$@"
  for p in "$@"; do
    [ -n "${VER[$p]:-}" ] || die "no $ARCH package $p in the apt lists (apt-get update?)"
    deb_name "$p"
    [ -s "$cache/$DEB.deb" ] || missing+=("$p:${DEB_ARCH[$p]/all/$ARCH}=${VER[$p]}")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ -w "$cache" ] || die "cannot write to $cache to download ${missing[*]}"
  log "downloading ${missing[*]}"
  # apt drops to its _apt user to download when it can; the cache may be root's only.
  if ! (cd "$cache" && apt-get -q -o APT::Sandbox::User=root download "${missing[@]}" >/dev/null); then
    # Lists older than the mirror name versions it no longer has: refresh them once, start over.
    if [ "$(id -u)" = 0 ] && [ -z "${LINUXKIT_FETCH_UPDATED:-}" ]; then
      log "apt-get download ${missing[*]} failed: apt-get update, then again"
      apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
      exec 9>&-
      LINUXKIT_FETCH_UPDATED=1 exec bash "${BASH_SOURCE[0]}" "${ARGS[@]}"
    fi
    die "apt-get download ${missing[*]} failed"
  fi
  for p in "$@"; do
    deb_name "$p"
    [ -s "$cache/$DEB.deb" ] || die "apt-get download left no $cache/$DEB.deb"
  done
}
# Sets LIST to the package's file list (paths relative to its root), kept in the cache.
listing() {
  deb_name "$1"
  LIST=$cache/lists/$DEB.list
  if [ ! -s "$LIST" ]; then
    dpkg-deb --fsys-tarfile "$cache/$DEB.deb" | tar -t | sed -e 's|^\./||' -e 's|/$||' -e '/^$/d' > "$LIST.tmp" ||
      die "cannot list $DEB.deb"
    mv "$LIST.tmp" "$LIST"
  fi
}
# Sets TREE to the package unpacked in the cache (for readelf and symlinks).
tree() {
  deb_name "$1"
  TREE=$cache/trees/$DEB
  if [ ! -e "$TREE/.unpacked" ]; then
    rm -rf "$TREE"
    dpkg -x "$cache/$DEB.deb" "$TREE" || die "dpkg -x $DEB.deb failed"
    : > "$TREE/.unpacked"
  fi
}

# --- the closure -------------------------------------------------------------------------------
load_info "$KERNEL_META"
[ -n "${VER[$KERNEL_META]:-}" ] || die "no $KERNEL_META in the $ARCH package lists"
kpkg=
for d in ${DEPS[$KERNEL_META]}; do case $d in linux-image-*-cloud-arm64) kpkg=$d; break ;; esac; done
[ -n "$kpkg" ] || die "$KERNEL_META depends on no linux-image-*-cloud-arm64 package (Depends: ${DEPS[$KERNEL_META]})"
kver=${kpkg#linux-image-}

# Every package the seeds may pull in, in one apt-cache call each for the names and their details.
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances "${SEEDS[@]/%/:$ARCH}" 2>/dev/null |
  sed -n 's/^\([a-z0-9][a-z0-9.+-]*\)\(:[a-z0-9]*\)\{0,1\}$/\1/p' | sort -u)
load_info "$kpkg" "${closure[@]}"

declare -A NEEDED=()   # package → 1: goes into the image
declare -A PATHPKG=()  # root-relative path → the needed package that ships it (kernel excluded)
declare -A SCANNED=()  # root-relative path → 1: its DT_NEEDED were followed
declare -A FOUND=()    # soname → root-relative path, as the loader finds it
libs=()
need() {
  local f
  NEEDED[$1]=1
  [ "$1" = "$kpkg" ] && return 0
  listing "$1"
  while IFS= read -r f; do PATHPKG[$f]=$1; done < "$LIST"
}
fetch "$kpkg" "${SEEDS[@]}"
for p in "$kpkg" "${SEEDS[@]}"; do need "$p"; done

# Resolves a root-relative path through the needed packages' symlinks, the way the guest sees
# them once all are unpacked into one root: sets REAL (the final path) and REAL_PKG (its package).
REAL= REAL_PKG=
resolve_path() {
  local path=$1 hops=0 target
  while [ $hops -lt 20 ]; do
    REAL_PKG=${PATHPKG[$path]:-}
    [ -n "$REAL_PKG" ] || return 1
    tree "$REAL_PKG"
    if [ -L "$TREE/$path" ]; then
      target=$(readlink "$TREE/$path")
      case $target in
        /*) path=${target#/} ;;
        *) path=$(realpath -m -s --relative-to=/ "/${path%/*}/$target") ;;
      esac
      hops=$((hops + 1))
    else
      REAL=$path
      return 0
    fi
  done
  return 1
}
LIB_DIRS="lib/$TRIPLET usr/lib/$TRIPLET lib usr/lib" # Debian's ld.so.conf for arm64, then the defaults
# Sets SONAME_PATH to where the loader finds a soname among the needed packages' files.
find_soname() {
  local so=$1 d
  for d in $2 $LIB_DIRS; do
    if [ -n "${PATHPKG[$d/$so]:-}" ]; then SONAME_PATH=$d/$so; return 0; fi
  done
  return 1
}
# Debian's library package name for a soname: libfoo.so.1 → libfoo1, libfoo2.so.3 → libfoo2-3.
guess_package() {
  local so=$1 base ver
  base=${so%%.so*}; ver=${so#*.so}; ver=${ver#.}
  base=${base//_/-}; base=${base,,}
  case $base in *[0-9]) GUESS=$base-$ver ;; *) GUESS=$base$ver ;; esac
}
# A soname the needed packages do not ship: the package that needs it (Debian's shlibs rule)
# depends on the one that does. Tried in rounds, each downloaded at once: the likely name, then
# those already in the cache, then the other lib* dependencies, then the rest.
provide_soname() {
  local so=$1 requester=$2 d round cands=() tried=" "
  guess_package "$so"
  load_info ${DEPS[$requester]:-}
  for round in guess cached lib rest; do
    cands=()
    for d in ${DEPS[$requester]:-}; do
      [ -z "${NEEDED[$d]:-}" ] && [ -n "${VER[$d]:-}" ] || continue # needed already, virtual, or no arm64 build
      case $tried in *" $d "*) continue ;; esac
      case $round in
        guess) [ "$d" = "$GUESS" ] || continue ;;
        cached) deb_name "$d"; [ -s "$cache/$DEB.deb" ] || continue ;;
        lib) case $d in lib*) ;; *) continue ;; esac ;;
      esac
      cands+=("$d")
      tried+="$d "
    done
    [ ${#cands[@]} -gt 0 ] || continue
    fetch "${cands[@]}"
    for d in "${cands[@]}"; do
      listing "$d"
      if grep -qxF -e "lib/$TRIPLET/$so" -e "usr/lib/$TRIPLET/$so" -e "lib/$so" -e "usr/lib/$so" "$LIST"; then
        need "$d"
        log "$so ← $d ${VER[$d]} (needed by $requester)"
        return 0
      fi
    done
  done
  return 1
}
# Follows the DT_NEEDED of one root-relative ELF path, recursively.
scan() {
  local path=$1 real p dyn runpath=() extra= so sonames=() d
  [ -z "${SCANNED[$path]:-}" ] || return 0
  resolve_path "$path" || die "$path is not shipped by any package fetched (${!NEEDED[*]})"
  real=$REAL p=$REAL_PKG
  SCANNED[$path]=1
  if [ "$real" != "$path" ]; then
    [ -z "${SCANNED[$real]:-}" ] || return 0
    SCANNED[$real]=1
  fi
  [ "$(head -c 4 "$TREE/$real" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || die "$real (from $p) is not an ELF file"
  dyn=$(readelf -dW "$TREE/$real")
  mapfile -t sonames < <(sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' <<< "$dyn")
  # DT_RUNPATH/DT_RPATH first, with $ORIGIN read as the file's own folder.
  IFS=: read -r -a runpath < <(sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]$/\2/p' <<< "$dyn") || true
  for d in "${runpath[@]}"; do
    d=${d//\$ORIGIN/\/${real%/*}}; d=${d//\$\{ORIGIN\}/\/${real%/*}}
    extra+=" $(realpath -m -s --relative-to=/ "$d")"
  done
  # The likely providers of all the sonames still missing, downloaded at once (each apt-get call
  # costs a second or two); provide_soname then finds them in the cache.
  local guesses=()
  for so in "${sonames[@]}"; do
    [ -z "${FOUND[$so]:-}" ] && ! find_soname "$so" "$extra" || continue
    load_info "$p"
    load_info ${DEPS[$p]:-}
    guess_package "$so"
    case " ${DEPS[$p]:-} " in *" $GUESS "*) ;; *) continue ;; esac
    [ -z "${NEEDED[$GUESS]:-}" ] && [ -n "${VER[$GUESS]:-}" ] && guesses+=("$GUESS")
  done
  [ ${#guesses[@]} -eq 0 ] || fetch "${guesses[@]}"
  for so in "${sonames[@]}"; do
    if [ -z "${FOUND[$so]:-}" ]; then
      if ! find_soname "$so" "$extra"; then
        load_info "$p"
        provide_soname "$so" "$p" || die "no package provides $so (needed by $real from $p; its Depends: ${DEPS[$p]:-none})"
        find_soname "$so" "$extra" || die "internal: $so still not found"
      fi
      FOUND[$so]=$SONAME_PATH
      libs+=("$SONAME_PATH")
    fi
    scan "${FOUND[$so]}"
  done
}

for prog in "${PROGRAMS[@]}"; do scan "$prog"; done
for so in "${DLOPENED[@]}"; do
  if [ -z "${FOUND[$so]:-}" ]; then
    find_soname "$so" "" || die "$so is not in libc6:$ARCH"
    FOUND[$so]=$SONAME_PATH
    libs+=("$SONAME_PATH")
  fi
  scan "${FOUND[$so]}"
done
for prog in "${STATIC_PROGRAMS[@]}"; do
  resolve_path "$prog" || die "$prog is not shipped by any package fetched"
  if readelf -dW "$TREE/$REAL" 2>/dev/null | grep -q '(NEEDED)'; then
    die "$prog is expected to be static but loads shared libraries"
  fi
done
# The dynamic loader every program names in PT_INTERP.
tree nix-bin
interp=$(readelf -lW "$TREE/usr/bin/nix" | sed -n 's/.*\[Requesting program interpreter: \/\(.*\)\]$/\1/p')
[ -n "$interp" ] || die "usr/bin/nix names no program interpreter"
resolve_path "$interp" || die "the dynamic loader /$interp is not in libc6:$ARCH"

# The kernel and its modules: the kernel package is only listed, never scanned.
listing "$kpkg"
grep -qxF "boot/vmlinuz-$kver" "$LIST" || die "$kpkg ships no boot/vmlinuz-$kver"
grep -qxF "lib/modules/$kver/modules.dep" "$LIST" || grep -q "^lib/modules/$kver/kernel/" "$LIST" ||
  die "$kpkg ships no lib/modules/$kver"

# --- the manifest and the unpacked root --------------------------------------------------------
manifest=$(for p in "${!NEEDED[@]}"; do echo "$p ${VER[$p]}"; done | sort)
# The stamp names this script's way of unpacking too, so a change to it rebuilds root/.
debs=$(echo "# unpacked with dpkg -x, then depmod"; for p in "${!NEEDED[@]}"; do deb_name "$p"; echo "$DEB.deb"; done | sort)
if [ ! -e "$outdir/root/.fetch-packages.debs" ] || [ "$(cat "$outdir/root/.fetch-packages.debs")" != "$debs" ]; then
  log "unpacking ${#NEEDED[@]} packages into $outdir/root"
  rm -rf "$outdir/root.new"
  mkdir -p "$outdir/root.new"
  for d in $(grep -v '^#' <<< "$debs"); do dpkg -x "$cache/$d" "$outdir/root.new" || die "dpkg -x $d failed"; done
  # The kernel package leaves modules.dep to its postinst; depmod reads arm64 modules just as well.
  depmod -b "$outdir/root.new" "$kver" || die "depmod -b $outdir/root.new $kver failed"
  echo "$debs" > "$outdir/root.new/.fetch-packages.debs"
  rm -rf "$outdir/root"
  mv "$outdir/root.new" "$outdir/root"
fi
# Older versions of the packages looked at (a kernel or library update since) leave the cache.
for f in "$cache"/*.deb; do
  [ -e "$f" ] || continue
  base=${f##*/}; base=${base%.deb}; p=${base%%_*}
  [ -n "${VER[$p]:-}" ] || continue
  deb_name "$p"
  if [ "$base" != "$DEB" ]; then
    log "removing $base.deb from the cache (now ${VER[$p]})"
    rm -rf "$f" "$cache/lists/$base.list" "$cache/trees/$base"
  fi
done
{
  echo "kernel boot/vmlinuz-$kver"
  echo "kernel-version $kver"
  printf 'program %s\n' "${STATIC_PROGRAMS[@]}" "${PROGRAMS[@]}"
  echo "interp $interp"
  printf 'lib %s\n' "${libs[@]}" | sort -u
} > "$outdir/files.txt.new"
mv "$outdir/files.txt.new" "$outdir/files.txt"
echo "$manifest" > "$outdir/packages.txt.new"
mv "$outdir/packages.txt.new" "$outdir/packages.txt"
cat "$outdir/packages.txt"
