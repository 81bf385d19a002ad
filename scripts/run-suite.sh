#!/usr/bin/env bash
# The summary stage of the test run, apart from installing and building (scripts/test.sh does
# both, then this): runs tap on the project in the current directory with the given arguments,
# passes its output through scripts/tap-summary.mjs, and ends with the closing line
# "N passed, N failed" (", N skipped" when any were). Exit 0 only when nothing failed.
#
# The runner's own tests run it on fixture projects (tests/runner/fixtures/) and, to see a crash
# of the summary handled, point TAP_SUMMARY_SCRIPT at a summary that crashes.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tap=$here/../node_modules/.bin/tap
summary=${TAP_SUMMARY_SCRIPT:-$here/tap-summary.mjs}
output=$(mktemp)
trap 'rm -f "$output"' EXIT

# tap's exit code travels to the summary as the stream's last line: the summary judges it too.
{ "$tap" --reporter=tap "$@" 2>&1; echo "# tap exit code: $?"; } | node "$summary" | tee "$output"
summary_rc=${PIPESTATUS[1]}

closing=$(tail -n 1 "$output")
if ! [[ $closing =~ ^[0-9]+\ passed,\ [0-9]+\ failed(,\ [0-9]+\ skipped)?$ ]]; then
  # No closing line: the summary crashed (its error is above) and the counts are unknown.
  echo
  echo "the test summary ($summary) crashed with exit code $summary_rc before its closing line: the counts are unknown"
  echo "0 passed, 1 failed"
  exit 1
fi
exit "$summary_rc"
