#!/usr/bin/env bash
# All benchmarks (not tests): boot-to-ready and the control path. Run as root after install-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
node bench/boot.mjs "$@"
node bench/status.mjs
