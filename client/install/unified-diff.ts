// A line diff in unified format, so `install --dry-run` can show exactly what it would change.
// The `diff` package computes the hunks; the headers are written here as GNU `diff -u` writes
// them (a one-line range without ",1"; labels as given, unquoted).
import { structuredPatch } from 'diff';

/** `start,count` as diff -u writes it: an empty range names the line before it, one line no count. */
function range(start: number, count: number): string {
  if (count === 1) return `${start}`;
  return `${count === 0 ? start - 1 : start},${count}`;
}

/**
 * A unified diff from `before` to `after`; `null` stands for a missing file (shown as
 * /dev/null). Returns '' when the texts are equal. `context` lines surround each change.
 */
export function unifiedDiff(
  before: string | null,
  after: string | null,
  labels: { before: string; after: string },
  context = 3,
): string {
  if (before === after) return '';
  const beforeLabel = before === null ? '/dev/null' : labels.before;
  const afterLabel = after === null ? '/dev/null' : labels.after;
  const patch = structuredPatch(beforeLabel, afterLabel, before ?? '', after ?? '', undefined, undefined, {
    context,
  });
  let out = `--- ${beforeLabel}\n+++ ${afterLabel}\n`;
  for (const hunk of patch.hunks) {
    out += `@@ -${range(hunk.oldStart, hunk.oldLines)} +${range(hunk.newStart, hunk.newLines)} @@\n`;
    for (const line of hunk.lines) out += `${line}\n`;
  }
  return out;
}
