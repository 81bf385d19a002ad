#!/usr/bin/env bash
# Installs what linuxkit-nix needs on a Debian machine, idempotently: QEMU, the host's Nix and the
# few tools the tests use, and the npm packages from package-lock.json. The guest image needs no
# Debian package: the daemon builds it in Node from Debian's archive (docs/guest-image.md).
# Safe to run again: it installs only what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  qemu-system-x86      # the builder VM (x86_64 guest) and the QEMU backend's tests
  qemu-system-arm      # the aarch64 builder VM (the Apple Silicon case, emulated)
  nix-bin              # the host's own Nix, for the end-to-end builds
  linux-image-amd64 busybox-static  # tests only: the QEMU backend's panic test boots the host kernel
  cpio                 # tests only: unpacking built initramfs images to inspect them
  openssh-client       # ssh-keygen for the keys, ssh for Nix's remote builds
  procps iproute2      # ps and ss, used by the tests
  systemd              # systemd-analyze verify for the rendered unit (runs without a live systemd)
)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install Debian packages (${missing[*]}); run as root or install them first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when node_modules does not match the lock file.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || ! cmp -s <(sed -n '/"packages"/,$p' package-lock.json | sha256sum) "node_modules/.linuxkit-lock.sha256" 2>/dev/null; then
  echo "install-deps: installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  sed -n '/"packages"/,$p' package-lock.json | sha256sum > node_modules/.linuxkit-lock.sha256
fi

# The compiled JavaScript the daemon and the CLI run from.
npx tsc -p tsconfig.json
