// The guest's serial console, one file per boot (`console/<time>-<n>.log`), the newest few kept, so
// the output of the boot that crashed is still there after the restart that followed it.
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export function consoleLogName(bootedAt: Date, seq: number): string {
  return `${bootedAt.toISOString().replace(/[:.]/g, '-')}-${String(seq).padStart(4, '0')}.log`;
}

/** Returns the console log path for a new boot and prunes all but the newest `keep` older ones. */
export async function newConsoleLog(dir: string, bootedAt: Date, seq: number, keep = 5): Promise<string> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort();
  for (const old of names.slice(0, Math.max(0, names.length - (keep - 1))))
    await rm(join(dir, old), { force: true });
  return join(dir, consoleLogName(bootedAt, seq));
}

export async function latestConsoleLog(dir: string): Promise<string | null> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort();
  return names.length ? join(dir, names[names.length - 1]) : null;
}

/** The last `lines` lines of a file, reading only its tail. A missing file has no lines. */
export async function tailLines(path: string, lines: number, maxBytes = 4 * 1024 * 1024): Promise<string[]> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return [];
  }
  const fh = await open(path, 'r');
  try {
    let chunk = 64 * 1024;
    for (;;) {
      const start = Math.max(0, size - chunk);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      // Serial output has \r\n and stray control characters; keep it readable as lines.
      const all = buf.toString('utf8').replace(/\r/g, '').split('\n');
      if (all.length && all[all.length - 1] === '') all.pop();
      if (all.length > lines || start === 0 || chunk >= maxBytes) return all.slice(-lines);
      chunk *= 4;
    }
  } finally {
    await fh.close();
  }
}
