#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is needed, build, run every tap test
# (including the ones that boot the real builder VM under QEMU/tcg), and close with the line
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }
summary=$(mktemp)
lint_log=$(mktemp)
trap 'rm -f "$summary" "$lint_log"' EXIT
# Formatting and lint (biome.json) first, in seconds: a finding is one failure in the closing line,
# named in its "Failed:" list, and the tests still run.
lint_failed=0
if ! npm run --silent lint >"$lint_log" 2>&1; then
  lint_failed=1
  tail -n 60 "$lint_log"
fi
npx tap --reporter=tap "$@" 2>&1 | LINT_FAILED=$lint_failed TAP_SUMMARY_FILE=$summary node scripts/tap-summary.mjs
rc=${PIPESTATUS[0]}
[ "$lint_failed" -ne 0 ] && [ "$rc" -eq 0 ] && rc=1
if [ "$rc" -ne 0 ] && grep -q '"failed":0' "$summary" 2>/dev/null; then
  # Every test passed but tap still failed: coverage under the thresholds in package.json
  # ("tap" section), which tap reports only through its exit code.
  passed=$(sed 's/.*"passed":\([0-9]*\).*/\1/' "$summary")
  echo "tap exited $rc with every test passing: coverage is below the thresholds in package.json (see the table above)"
  echo "$passed passed, 1 failed"
fi
exit "$rc"
