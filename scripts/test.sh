#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is needed, build, run every tap test
# (including the ones that boot the real builder VM under QEMU/tcg), and close with the line
# "N passed, N failed" (", N skipped" when any were). The run itself is scripts/run-suite.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || { echo "install-deps failed (its error is above)"; echo "0 passed, 1 failed"; exit 1; }
exec bash scripts/run-suite.sh "$@"
