// The dry-run diff must be a real unified diff: `patch` applies it and gets the new text back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { unifiedDiff } from '../../client/install/unified-diff.js';

const labels = { before: 'a/f', after: 'b/f' };

function patchApplies(before: string | null, after: string | null): string {
  const dir = mkdtempSync(join(tmpdir(), 'lk-diff-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, before ?? '');
    const diff = unifiedDiff(before, after, labels);
    writeFileSync(join(dir, 'p'), diff);
    execFileSync('patch', ['-s', '-p0', file, join(dir, 'p')], { cwd: dir, stdio: 'pipe' });
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('equal texts give no diff', async (t) => {
  t.equal(unifiedDiff('a\n', 'a\n', labels), '');
  t.equal(unifiedDiff(null, null, labels), '');
});

t.test('a new file is all additions from /dev/null', async (t) => {
  t.equal(unifiedDiff(null, 'x\ny\n', labels), '--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n');
});

t.test('a removed file is all deletions to /dev/null', async (t) => {
  t.equal(unifiedDiff('x\n', null, labels), '--- a/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n');
});

t.test('a changed line in the middle keeps three lines of context', async (t) => {
  const before = 'l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\n';
  const after = 'l1\nl2\nl3\nL4\nl5\nl6\nl7\nl8\n';
  t.equal(
    unifiedDiff(before, after, labels),
    '--- a/f\n+++ b/f\n@@ -1,7 +1,7 @@\n l1\n l2\n l3\n-l4\n+L4\n l5\n l6\n l7\n',
  );
});

t.test('a missing final newline is shown and kept', async (t) => {
  t.equal(
    unifiedDiff('a\nb', 'a\nb\nc\n', labels),
    '--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n-b\n\\ No newline at end of file\n+b\n+c\n',
  );
  t.equal(patchApplies('a\nb', 'a\nb\n'), 'a\nb\n');
  t.equal(patchApplies('a\nb\n', 'a\nb'), 'a\nb');
});

t.test('patch turns the old text into the new one, for many random edits', async (t) => {
  // A fixed linear congruential generator: the same cases on every run.
  let seed = 12345;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const words = ['a', 'b', 'c', 'd', 'e'];
  const text = (count: number) => {
    const lines = Array.from({ length: count }, () => words[rand(words.length)]);
    const body = lines.join('\n');
    return count === 0 ? '' : rand(4) === 0 ? body : `${body}\n`;
  };
  for (let i = 0; i < 150; i++) {
    const before = text(rand(25));
    const after = text(rand(25));
    if (patchApplies(before, after) !== after) {
      t.fail(`patch of ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      return;
    }
  }
  t.pass('150 random pairs round-trip through patch');
});
