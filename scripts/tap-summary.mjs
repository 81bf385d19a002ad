// Reads tap's raw TAP stream on stdin, passes it through, and closes with the verdict of
// scripts/tap-verdict.mjs: skips and failures named, then "N passed, N failed" (", N skipped"
// when any were) as the last line, which CI reads. The stream ends with the line
// "# tap exit code: N" that scripts/run-suite.sh appends; it is not passed through.
//
// A test is one top-level `t.test` (or bare assertion) of a test file. A file that crashes before
// reporting counts as one failure, and so does a file with no test points. Skips and todos are
// counted at any depth: one deep inside a test hides as much as one at the top. A failed lint
// check (LINT_FAILED=1, set by scripts/test.sh) is one failure more.
import { readFileSync } from 'node:fs';
import { Parser } from 'tap-parser';
import { coverageShortfall, parseCoverageRow, verdict } from './tap-verdict.mjs';

const EXIT_LINE = /^# tap exit code: (\d+)$/;

const run = { passed: 0, failures: [], skips: [], files: 0, tapExitCode: null, coverage: [], tapWords: [] };
const pointsByFile = new Map();
const subtestName = (p) => (p.name || '').replace(/^# Subtest: /, '');
const skipLine = (where, res) => {
  const why = res.todo
    ? `TODO ${res.todo === true ? '' : res.todo}`
    : `SKIP ${res.skip === true ? '' : res.skip}`;
  return `${where} > ${res.name} (${why.trim()})`;
};

/** Skips and todos below the top level of a file. */
function watchNested(parser, where) {
  parser.on('assert', (res) => {
    if (res.skip || res.todo) run.skips.push(skipLine(where, res));
  });
  parser.on('child', (sub) => watchNested(sub, `${where} > ${subtestName(sub)}`));
}

const root = new Parser();
root.on('child', (file) => {
  const fileName = subtestName(file);
  pointsByFile.set(fileName, 0);
  file.on('assert', (res) => {
    pointsByFile.set(fileName, pointsByFile.get(fileName) + 1);
    if (res.skip || res.todo) run.skips.push(skipLine(fileName, res));
    else if (res.ok) run.passed++;
    else run.failures.push(`${fileName} > ${res.name}`);
  });
  file.on('child', (test) => watchNested(test, `${fileName} > ${subtestName(test)}`));
});
root.on('assert', (res) => {
  run.files++;
  if (!res.ok) {
    // The file's own result is "not ok" with no failing test in it: it crashed or timed out.
    if (!run.failures.some((f) => f.startsWith(`${res.name} >`)))
      run.failures.push(`${res.name} (the file failed: crash or timeout)`);
  } else if (!pointsByFile.get(res.name)) {
    const tapSays = res.skip && res.skip !== true ? ` (tap: ${res.skip})` : '';
    run.failures.push(
      `${res.name}: the file produced no test points${tapSays}; a test file must test something`,
    );
  }
});
root.on('bailout', (reason) => run.failures.push(`tap bailed out: ${reason || 'no reason given'}`));
root.on('comment', (c) => run.tapWords.push(c.trimEnd()));
root.on('extra', (e) => run.tapWords.push(e.trimEnd()));

const thresholds = (() => {
  try {
    return JSON.parse(readFileSync('package.json', 'utf8')).tap ?? {};
  } catch {
    return {};
  }
})();

let pending = '';
function takeLine(line) {
  const exit = EXIT_LINE.exec(line);
  if (exit) {
    run.tapExitCode = Number(exit[1]);
    return;
  }
  const coverage = parseCoverageRow(line);
  if (coverage) run.coverage = coverageShortfall(coverage, thresholds);
  process.stdout.write(`${line}\n`);
  root.write(`${line}\n`);
}
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  const lines = (pending + chunk).split('\n');
  pending = lines.pop();
  for (const line of lines) takeLine(line);
});
process.stdin.on('end', () => {
  if (pending) takeLine(pending);
  root.end();
});
root.on('complete', () => {
  if (process.env.LINT_FAILED === '1') {
    run.failures.push(
      'lint: npm run lint (biome check) found problems, shown before the tests; npm run format fixes the formatting',
    );
  }
  const { lines, exitCode } = verdict(run);
  // The closing line is the last thing written: scripts/run-suite.sh takes its absence as a crash.
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exitCode = exitCode;
});
