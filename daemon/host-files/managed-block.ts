// A block of lines we own inside a file others own too (/etc/nix/machines, ssh_config): added,
// replaced in place and removed without touching a byte outside it. Pure string functions.

export interface BlockMarkers {
  begin: string;
  end: string;
  /** Begin lines of earlier versions, still found (and replaced by `begin` on the next write). */
  legacyBegin: string[];
}

// No ';' in the markers: Nix splits the machines file (and `builders`) on ';' as well as on
// newlines *before* it drops '#' comments, so "# BEGIN ... ; edits here ..." became a machine
// row "edits here are replaced)" and every build failed with "bad machine specification".
export function blockMarkers(name: string): BlockMarkers {
  return {
    begin: `# BEGIN ${name} (managed by linuxkit-nix, edits here are replaced)`,
    end: `# END ${name}`,
    legacyBegin: [`# BEGIN ${name} (managed by linuxkit-nix; edits here are replaced)`],
  };
}

/** Marks a block that was appended after a final line without a newline, so removal can undo it. */
const ADDED_NEWLINE = ' [newline added]';

interface Found {
  start: number;
  end: number;
  addedNewline: boolean;
}

function find(text: string, m: BlockMarkers): Found | null {
  const lines = text.split('\n');
  let offset = 0;
  let start = -1;
  let addedNewline = false;
  const begins = [m.begin, ...m.legacyBegin];
  for (const line of lines) {
    if (start < 0 && begins.some((b) => line === b || line === b + ADDED_NEWLINE)) {
      start = offset;
      addedNewline = line.endsWith(ADDED_NEWLINE);
    } else if (start >= 0 && line === m.end) {
      let end = offset + line.length;
      if (text[end] === '\n') end++;
      return { start, end, addedNewline };
    }
    offset += line.length + 1;
  }
  if (start >= 0)
    throw new Error(
      `found "${m.begin}" without its closing "${m.end}": fix the file by hand, nothing was changed`,
    );
  return null;
}

export function readManagedBlock(text: string, name: string): string | null {
  const m = blockMarkers(name);
  const f = find(text, m);
  if (!f) return null;
  const block = text.slice(f.start, f.end);
  const inner = block.split('\n').slice(1, -2);
  return inner.length ? inner.join('\n') + '\n' : '';
}

/** Replaces our block in place, or appends it; `body` is whole lines ending in "\n". */
export function upsertManagedBlock(text: string, name: string, body: string): string {
  if (body && !body.endsWith('\n')) body += '\n';
  const m = blockMarkers(name);
  const f = find(text, m);
  if (f) {
    const beginLine = f.addedNewline ? m.begin + ADDED_NEWLINE : m.begin;
    return text.slice(0, f.start) + `${beginLine}\n${body}${m.end}\n` + text.slice(f.end);
  }
  const needsNewline = text.length > 0 && !text.endsWith('\n');
  const beginLine = needsNewline ? m.begin + ADDED_NEWLINE : m.begin;
  return text + (needsNewline ? '\n' : '') + `${beginLine}\n${body}${m.end}\n`;
}

/** Removes our block and what adding it changed; the rest stays byte for byte. */
export function removeManagedBlock(text: string, name: string): string {
  const m = blockMarkers(name);
  const f = find(text, m);
  if (!f) return text;
  let before = text.slice(0, f.start);
  if (f.addedNewline && before.endsWith('\n') && f.end === text.length) before = before.slice(0, -1);
  return before + text.slice(f.end);
}
