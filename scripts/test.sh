#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is needed, build, run every tap test
# (including the ones that boot the real builder VM under QEMU/tcg), and close with the line
# "N passed, N failed" (", N skipped" when any were). The run itself is scripts/run-suite.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || { echo "install-deps failed (its error is above)"; echo "0 passed, 1 failed"; exit 1; }
# Formatting and lint (biome.json) first, in seconds: a finding is one failure in the closing line,
# named in its "Failed:" list, and the tests still run.
lint_log=$(mktemp)
if npm run --silent lint >"$lint_log" 2>&1; then
  export LINT_FAILED=0
else
  export LINT_FAILED=1
  tail -n 60 "$lint_log"
fi
rm -f "$lint_log"
exec bash scripts/run-suite.sh "$@"
