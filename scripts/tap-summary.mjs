// Reads tap's raw TAP stream on stdin, passes it through, and closes with the line
// "N passed, N failed" that CI reads. A test is one top-level `t.test` (or bare assertion) of a
// test file; a file that crashes before reporting counts as one failure, and so does a failed
// lint check (LINT_FAILED=1, set by scripts/test.sh).
import { writeFileSync } from 'node:fs';
import { Parser } from 'tap-parser';

let passed = 0;
let failed = 0;
const failures = [];

const root = new Parser();
root.on('child', (file) => {
  const fileName = (file.name || '').replace(/^# Subtest: /, '');
  file.on('assert', (res) => {
    if (res.skip || res.todo) return;
    if (res.ok) passed++;
    else {
      failed++;
      failures.push(`${fileName} > ${res.name}`);
    }
  });
});
root.on('assert', (res) => {
  // A file whose own result is "not ok" with no failing child asserts (crash, timeout).
  if (!res.ok && !failures.some((f) => f.startsWith(`${res.name} >`))) {
    failed++;
    failures.push(`${res.name} (the file failed: crash or timeout)`);
  }
});
root.on('complete', () => {
  if (process.env.LINT_FAILED === '1') {
    failed++;
    failures.push('lint: npm run lint (biome check) found problems, shown before the tests; npm run format fixes formatting');
  }
  if (failures.length) {
    process.stdout.write(`\nFailed:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
  }
  if (process.env.TAP_SUMMARY_FILE) {
    writeFileSync(process.env.TAP_SUMMARY_FILE, JSON.stringify({ passed, failed }));
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
});

process.stdin.on('data', (chunk) => process.stdout.write(chunk));
process.stdin.pipe(root);
