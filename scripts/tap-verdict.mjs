// The verdict on a test run, from what the TAP stream showed and how tap exited: the lines that
// close the output (what was skipped, what failed and why, then "N passed, N failed" with
// ", N skipped" when any were) and the exit code. Pure functions, so the runner's own tests can
// pin every case; scripts/tap-summary.mjs feeds them.

const METRICS = ['statements', 'branches', 'functions', 'lines'];

/**
 * The "All files" row of tap's text coverage report, in its column order
 * ("All files | 96.1 | 90 | 97 | 96 |"), as percentages by metric; null for any other line.
 */
export function parseCoverageRow(line) {
  const cells = line.split('|').map((c) => c.trim());
  if (cells[0] !== 'All files' || cells.length < 5) return null;
  const values = cells.slice(1, 5).map(Number);
  if (values.some((v) => !Number.isFinite(v))) return null;
  return Object.fromEntries(METRICS.map((m, i) => [m, values[i]]));
}

/**
 * The metrics below their thresholds (the "tap" section of package.json; tap's own default for a
 * metric not set there is 100).
 */
export function coverageShortfall(percent, thresholds = {}) {
  return METRICS.map((metric) => ({
    metric,
    percent: percent[metric],
    min: Number(thresholds[metric] ?? 100),
  })).filter((m) => m.percent < m.min);
}

/** tap's own summary lines and the coverage table, which say nothing about why tap failed. */
const TAP_NOISE = /^(# \{ total|# time=|# No coverage generated|-{3,})|\|/;

/**
 * @param run.passed    top-level tests that passed
 * @param run.failures  one line per failed test, file that crashed or timed out, or file without test points
 * @param run.skips     one line per skipped or todo test point, at any depth
 * @param run.files     test files tap reported on
 * @param run.tapExitCode  tap's exit code, or null if it never reached the summary
 * @param run.coverage  coverageShortfall() of the report's "All files" row (empty when none printed)
 * @param run.tapWords  lines tap printed outside any test (its own errors), most recent last
 * @returns {{ lines: string[], exitCode: number }}
 */
export function verdict(run) {
  const failures = [...run.failures];
  const code = run.tapExitCode;
  if (code === null) failures.push("tap's exit code never reached the summary: the output was cut short");
  if (run.files === 0) failures.push(`no test file ran (tap exited ${code}): see tap's words above`);
  const tapFailed = code !== null && code !== 0;
  if (tapFailed && run.coverage.length > 0) {
    const short = run.coverage.map((m) => `${m.metric} ${m.percent}% < ${m.min}%`).join(', ');
    failures.push(
      `coverage is below the thresholds in package.json ("tap" section): ${short} (see the table above)`,
    );
  }
  if (tapFailed && run.files > 0 && run.failures.length === 0 && run.coverage.length === 0) {
    const words = run.tapWords.filter((l) => l.trim() !== '' && !TAP_NOISE.test(l.trim())).slice(-6);
    failures.push(
      `tap exited ${code} though every test passed and coverage met its thresholds; tap said: ${words.map((w) => w.trim()).join(' | ') || 'nothing'}`,
    );
  }
  const lines = [];
  if (run.skips.length) lines.push('', `Skipped (${run.skips.length}):`, ...run.skips.map((s) => `  - ${s}`));
  if (failures.length) lines.push('', `Failed (${failures.length}):`, ...failures.map((f) => `  - ${f}`));
  const skipped = run.skips.length ? `, ${run.skips.length} skipped` : '';
  lines.push('', `${run.passed} passed, ${failures.length} failed${skipped}`);
  return { lines, exitCode: failures.length ? 1 : 0 };
}
