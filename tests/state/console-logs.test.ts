import t from 'tap';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  consoleLogName,
  latestConsoleLog,
  newConsoleLog,
  tailLines,
} from '../../daemon/state/console-logs.js';
import { tempDir } from '../helpers/env.js';

t.test('one console log per boot, the newest few kept', async (t) => {
  const dir = await tempDir('console');
  for (let i = 0; i < 7; i++) {
    const p = await newConsoleLog(dir, new Date(Date.UTC(2026, 0, 1, 0, 0, i)), i, 3);
    await writeFile(p, `boot ${i}\n`);
  }
  const names = (await readdir(dir)).sort();
  t.equal(names.length, 3);
  t.equal(names[2], consoleLogName(new Date(Date.UTC(2026, 0, 1, 0, 0, 6)), 6));
  t.equal(await latestConsoleLog(dir), join(dir, names[2]));
});

t.test(
  'tailLines returns the last lines, without carriage returns, and nothing for a missing file',
  async (t) => {
    const dir = await tempDir('tail');
    const p = join(dir, 'c.log');
    await writeFile(p, Array.from({ length: 50000 }, (_, i) => `line ${i}\r`).join('\n') + '\n');
    t.same(await tailLines(p, 3), ['line 49997', 'line 49998', 'line 49999']);
    t.equal((await tailLines(p, 20000)).length, 20000);
    t.same(await tailLines(join(dir, 'missing'), 5), []);
  },
);
