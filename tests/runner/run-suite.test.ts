// The runner tells the truth: scripts/run-suite.sh (the stage of scripts/test.sh after install
// and build) run on fixture projects, each showing its closing line and exit code. A skip is
// counted, a file without test points fails, a crash of the summary fails, a tap failure that is
// not coverage is told apart from one that is. Plus the verdict's own table of edge cases.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot, tempDir } from '../helpers/env.js';

interface Verdict {
  lines: string[];
  exitCode: number;
}
interface VerdictModule {
  verdict(run: Record<string, unknown>): Verdict;
  parseCoverageRow(line: string): Record<string, number> | null;
  coverageShortfall(
    percent: Record<string, number>,
    thresholds?: Record<string, number>,
  ): Array<{ metric: string; percent: number; min: number }>;
}
// Imported before any subtest is queued: an await after them lets tap end the root test first.
const verdicts = (await import(join(repoRoot, 'scripts', 'tap-verdict.mjs'))) as VerdictModule;
const clean = { passed: 3, failures: [], skips: [], files: 2, tapExitCode: 0, coverage: [], tapWords: [] };
const fixtures = join(repoRoot, 'tests', 'runner', 'fixtures');
const runSuite = join(repoRoot, 'scripts', 'run-suite.sh');

interface SuiteRun {
  code: number | null;
  output: string;
  closing: string;
  ms: number;
}

/**
 * Runs scripts/run-suite.sh in a copy of a fixture project. `env -i` gives it a clean
 * environment: this test's own tap settings (loader, coverage directory) must not leak into the
 * nested run, and tap re-adds them to any environment passed through spawn's env option.
 */
async function runFixture(
  name: string,
  env: Record<string, string> = {},
): Promise<SuiteRun & { dir: string }> {
  const dir = await tempDir(`fx-${name}`);
  cpSync(join(fixtures, name), dir, { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  const vars = [
    `PATH=${process.env.PATH}`,
    `HOME=${dir}`,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
  ];
  const started = Date.now();
  const child = spawn('env', ['-i', ...vars, 'bash', runSuite], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const lines = output.trimEnd().split('\n');
  return { dir, code, output, closing: lines[lines.length - 1], ms: Date.now() - started };
}

// Five whole tap runs, all at once: about a minute on a quiet machine, but more than ten at a
// load of 50 on two cores, which is no fault of the runner.
t.setTimeout(45 * 60_000);
const [skip, noPoints, crash, tapFailure, coverage] = await Promise.all([
  runFixture('skip'),
  runFixture('no-points'),
  runFixture('skip', { TAP_SUMMARY_SCRIPT: join(fixtures, 'crashing-summary.mjs') }),
  runFixture('tap-failure'),
  runFixture('low-coverage'),
]);
t.teardown(() =>
  Promise.all(
    [skip, noPoints, crash, tapFailure, coverage].map((r) => rm(r.dir, { recursive: true, force: true })),
  ),
);

const shown = (r: SuiteRun) => `exit ${r.code}, "${r.closing}" (${(r.ms / 1000).toFixed(1)} s)`;

t.test('skips and todos are counted and named; the run passes', async (t) => {
  t.equal(skip.closing, '2 passed, 0 failed, 2 skipped', 'the closing line counts them');
  t.equal(skip.code, 0);
  t.match(
    skip.output,
    'Skipped (2):\n  - skip.fixture.mjs > skipped here (SKIP needs a machine we do not have)\n',
  );
  t.match(
    skip.output,
    '  - skip.fixture.mjs > passes with a todo inside > the part not written yet (TODO write it)\n',
  );
  t.notMatch(skip.output, /Failed \(/);
  t.comment(`skip fixture: ${shown(skip)}`);
});

t.test('a test file with no test points fails the run, named', async (t) => {
  t.equal(noPoints.closing, '1 passed, 1 failed');
  t.equal(noPoints.code, 1);
  t.match(
    noPoints.output,
    /Failed \(1\):\n {2}- empty\.fixture\.mjs: the file produced no test points \(tap: no tests found\); a test file must test something\n/,
  );
  t.comment(`no-points fixture: ${shown(noPoints)}`);
});

t.test('a crash of the summary fails the run, named, with the counts unknown', async (t) => {
  t.equal(crash.closing, '0 passed, 1 failed');
  t.equal(crash.code, 1);
  t.match(crash.output, 'Error: the summary broke (a runner fixture)', "the summary's own error is shown");
  t.match(
    crash.output,
    `the test summary (${join(fixtures, 'crashing-summary.mjs')}) crashed with exit code 1 before its closing line: the counts are unknown`,
  );
  t.comment(`crashing summary: ${shown(crash)}`);
});

t.test(
  'tap failing with every test green and coverage met is its own failure, with tap’s words',
  async (t) => {
    t.equal(tapFailure.closing, '1 passed, 1 failed');
    t.equal(tapFailure.code, 1);
    t.match(
      tapFailure.output,
      /- tap exited 1 though every test passed and coverage met its thresholds; tap said: .*error thrown in teardown/,
    );
    t.notMatch(tapFailure.output, /coverage is below/, 'not reported as coverage');
    t.comment(`tap-failure fixture: ${shown(tapFailure)}`);
  },
);

t.test('coverage under the thresholds is named with the metric that is short', async (t) => {
  t.equal(coverage.closing, '1 passed, 1 failed');
  t.equal(coverage.code, 1);
  t.match(
    coverage.output,
    '- coverage is below the thresholds in package.json ("tap" section): statements 66.66% < 100%, functions 50% < 100%, lines 66.66% < 100% (see the table above)',
  );
  t.notMatch(coverage.output, /tap exited \d+ though/, 'not reported as an unexplained tap failure');
  t.comment(`coverage fixture: ${shown(coverage)}`);
});

const last = (v: Verdict) => v.lines[v.lines.length - 1];

t.test('verdict: the edge cases no fixture reaches', async (t) => {
  t.same(
    verdicts.verdict(clean),
    { lines: ['', '3 passed, 0 failed'], exitCode: 0 },
    'all green: no ", 0 skipped"',
  );
  const cut = verdicts.verdict({ ...clean, tapExitCode: null });
  t.equal(last(cut), '3 passed, 1 failed');
  t.ok(
    cut.lines.includes("  - tap's exit code never reached the summary: the output was cut short"),
    'named as a failure',
  );
  const none = verdicts.verdict({
    ...clean,
    passed: 0,
    files: 0,
    tapExitCode: 1,
    tapWords: ['No test files found'],
  });
  t.equal(
    last(none),
    '0 passed, 1 failed',
    'no test file ran: one failure, not also an unexplained tap failure',
  );
  t.match(none.lines.join('\n'), /no test file ran \(tap exited 1\)/);
  const both = verdicts.verdict({
    ...clean,
    failures: ['a.test.ts > x'],
    tapExitCode: 1,
    coverage: [{ metric: 'lines', percent: 80, min: 92 }],
  });
  t.equal(last(both), '3 passed, 2 failed', 'a failed test and a coverage shortfall are both counted');
  t.equal(both.exitCode, 1);
});

t.test('coverage: the "All files" row and the thresholds', async (t) => {
  t.same(verdicts.parseCoverageRow('All files |   96.12 |    90.5 |      97 |   96.1 |                   '), {
    statements: 96.12,
    branches: 90.5,
    functions: 97,
    lines: 96.1,
  });
  t.equal(
    verdicts.parseCoverageRow(' lib.mjs  |     100 |      100 |      50 |     100 |'),
    null,
    'a file row is not the total',
  );
  t.equal(verdicts.parseCoverageRow('ok 1 - All files | x'), null);
  const percent = { statements: 96, branches: 84.9, functions: 97, lines: 96 };
  t.same(verdicts.coverageShortfall(percent, { statements: 92, branches: 85, functions: 92, lines: 92 }), [
    { metric: 'branches', percent: 84.9, min: 85 },
  ]);
  t.same(
    verdicts.coverageShortfall(percent).map((m) => m.metric),
    ['statements', 'branches', 'functions', 'lines'],
    "tap's default threshold is 100",
  );
});
