#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is needed, build, run every tap test
# (including the ones that boot the real builder VM under QEMU/tcg), and close with the line
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
npx tap --reporter=tap "$@" 2>&1 | node scripts/tap-summary.mjs
exit "${PIPESTATUS[0]}"
