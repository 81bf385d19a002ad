#!/usr/bin/env bash
# Brings a linuxkit-nix builder up on this Debian machine, as root, installing what it needs:
# the Debian and npm packages and the build (scripts/install-deps.sh), then `linuxkitctl install`
# registers the builder with Nix (keys, /etc/nix/machines block, SSH drop-in) and the service
# manager, and this waits until the builder is healthy. Safe to run again.
# Extra arguments go to `linuxkitctl install`, e.g. --accel tcg --cpus 4 --memory 4096.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
ctl=(node dist/client/main.js)
state=/var/lib/linuxkit-nix

if [ -d /run/systemd/system ]; then
  "${ctl[@]}" install "$@"  # as root, install means the system service
else
  # No service manager runs here (a container, for instance): run linuxkitd in the background.
  "${ctl[@]}" install --no-service "$@"
  reachable() { "${ctl[@]}" status >/dev/null 2>&1; [ $? -ne 3 ]; }  # exit 3: no daemon answers
  if ! reachable; then
    mkdir -p "$state/log"
    setsid nohup node dist/daemon/main.js --state-dir "$state" >>"$state/log/linuxkitd.out" 2>&1 </dev/null &
    echo "up: no service manager: started linuxkitd in the background (pid $!); it will not come back after a reboot"
  fi
  # Config changes made by install are picked up by a running daemon's watcher.
  for _ in $(seq 60); do
    reachable && break
    sleep 0.5
  done
fi
"${ctl[@]}" start --wait --timeout 600
"${ctl[@]}" status
