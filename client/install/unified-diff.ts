// A small line diff in unified format, so `install --dry-run` can show exactly what it would
// change. Myers' O(ND) algorithm; the files it compares are config files of a few dozen lines.

interface Side {
  lines: string[];
  /** Comparison keys: the last line carries a marker when it has no final newline. */
  keys: string[];
  missingNewline: boolean;
}

const NO_EOL = '\u0000no-eol';

function side(text: string): Side {
  if (text === '') return { lines: [], keys: [], missingNewline: false };
  const missingNewline = !text.endsWith('\n');
  const lines = (missingNewline ? text : text.slice(0, -1)).split('\n');
  const keys = lines.slice();
  if (missingNewline) keys[keys.length - 1] += NO_EOL;
  return { lines, keys, missingNewline };
}

type Op = { kind: ' ' | '-' | '+'; ai: number; bi: number };

/** The shortest edit script from `a` to `b` (Myers 1986: frontiers per D, then a backtrack). */
function editScript(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const v = new Int32Array(2 * max + 2);
  const at = (k: number) => k + max + 1;
  const trace: Int32Array[] = [];
  search: for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[at(k - 1)] < v[at(k + 1)]) ? v[at(k + 1)] : v[at(k - 1)] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[at(k)] = x;
      if (x >= n && y >= m) break search;
    }
  }
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const f = trace[d];
    const k = x - y;
    const prevK = k === -d || (k !== d && f[at(k - 1)] < f[at(k + 1)]) ? k + 1 : k - 1;
    const prevX = f[at(prevK)];
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      ops.push({ kind: ' ', ai: x, bi: y });
    }
    if (d > 0) {
      if (x === prevX) ops.push({ kind: '+', ai: x, bi: prevY });
      else ops.push({ kind: '-', ai: prevX, bi: y });
    }
    x = prevX;
    y = prevY;
  }
  return ops.reverse();
}

const range = (start: number, count: number) => (count === 1 ? `${start}` : `${count === 0 ? start - 1 : start},${count}`);

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
  const a = side(before ?? '');
  const b = side(after ?? '');
  const ops = editScript(a.keys, b.keys);
  let out = `--- ${before === null ? '/dev/null' : labels.before}\n+++ ${after === null ? '/dev/null' : labels.after}\n`;
  const changes = ops.flatMap((op, i) => (op.kind === ' ' ? [] : [i]));
  let i = 0;
  while (i < changes.length) {
    const start = Math.max(0, changes[i] - context);
    let last = changes[i];
    // Changes up to 2*context lines apart share a hunk, as in diff -u.
    while (i + 1 < changes.length && changes[i + 1] - last <= 2 * context) last = changes[++i];
    i++;
    const stop = Math.min(ops.length, last + context + 1);
    const slice = ops.slice(start, stop);
    const aCount = slice.filter((o) => o.kind !== '+').length;
    const bCount = slice.filter((o) => o.kind !== '-').length;
    const first = slice[0];
    out += `@@ -${range(first.ai + 1, aCount)} +${range(first.bi + 1, bCount)} @@\n`;
    for (const op of slice) {
      const fromA = op.kind !== '+';
      out += `${op.kind}${fromA ? a.lines[op.ai] : b.lines[op.bi]}\n`;
      const noEol = fromA ? a.missingNewline && op.ai === a.lines.length - 1 : b.missingNewline && op.bi === b.lines.length - 1;
      if (noEol) out += '\\ No newline at end of file\n';
    }
  }
  return out;
}
