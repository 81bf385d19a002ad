// Replacing a file that another program appends to at the same time: a real `sh` loop appending
// with `>>` while the file is rewritten again and again; every appended line survives, once, and
// mostly in order (one written to the old file across a rename comes a little later); a file
// rewritten (not appended to) meanwhile is refused, not clobbered, and so is one to which a
// racing install appended our own block.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChangedMeanwhileError, rewriteSharedFile } from '../../daemon/fs/shared-file-rewrite.js';
import { tempDir } from '../helpers/env.js';

const BLOCK = /# BEGIN ours\n[\s\S]*?# END ours\n/;

t.test('lines appended during many rewrites are all kept, once, in order', async (t) => {
  const file = join(await tempDir('shared'), 'machines');
  await writeFile(file, 'first line\n');
  const lines = 300;
  const appender = spawn('sh', [
    '-c',
    `i=0; while [ $i -lt ${lines} ]; do echo "foreign $i" >> "$1"; i=$((i+1)); sleep 0.01; done`,
    'sh',
    file,
  ]);
  const appended = new Promise((r) => appender.on('exit', r));
  let rewrites = 0;
  let refused = 0;
  let done = false;
  void appended.then(() => (done = true));
  while (!done) {
    const before = await readFile(file, 'utf8');
    const n = rewrites;
    const ours = (text: string) => `${text.replace(BLOCK, '')}# BEGIN ours\nrewrite ${n}\n# END ours\n`;
    try {
      await rewriteSharedFile(file, before, ours);
      rewrites++;
    } catch (err) {
      if (!(err instanceof ChangedMeanwhileError)) throw err;
      refused++;
    }
  }
  const final = await readFile(file, 'utf8');
  const foreign = final.split('\n').filter((l) => l.startsWith('foreign '));
  const expected = Array.from({ length: lines }, (_, i) => `foreign ${i}`);
  t.same([...foreign].sort(), [...expected].sort(), 'every appended line, once');
  // A line written to the old file by a writer that had it open across the rename is appended to
  // the new file by the late check, possibly after a line already written there.
  const displaced = foreign.filter((l, i) => l !== expected[i]).length;
  t.comment(`${displaced} of ${lines} lines out of their append order (written across a rename)`);
  t.equal(final.match(/# BEGIN ours/g)?.length, 1, 'one block of ours');
  t.ok(final.startsWith('first line\n'));
  t.comment(`${rewrites} rewrites (${refused} refused as changed meanwhile) during ${lines} appends`);
  t.ok(rewrites > 5, 'the rewrites really interleaved with the appends');
});

t.test('a file rewritten meanwhile is refused with ChangedMeanwhileError and left as it is', async (t) => {
  const file = join(await tempDir('shared'), 'nix.conf');
  await writeFile(file, 'builders = @/etc/nix/machines\n');
  await writeFile(file, 'max-jobs = 4\n'); // another program's edit after ours was planned
  await t.rejects(
    rewriteSharedFile(file, 'builders = @/etc/nix/machines\n', (text) => `${text}ours = 1\n`),
    {
      name: 'ChangedMeanwhileError',
      message: `${file} was changed by another program while this change was prepared`,
    },
  );
  t.equal(await readFile(file, 'utf8'), 'max-jobs = 4\n');
});

t.test(
  'our own block appended meanwhile (by a racing install) is not carried: refused, one block stays',
  async (t) => {
    const file = join(await tempDir('shared'), 'machines');
    const foreign = 'ssh://other x86_64-linux\n';
    const withBlock = (text: string) => `${text.replace(BLOCK, '')}# BEGIN ours\nbuilder\n# END ours\n`;
    await writeFile(file, foreign);
    await writeFile(file, withBlock(foreign)); // the other install won the race
    await t.rejects(rewriteSharedFile(file, foreign, withBlock), { name: 'ChangedMeanwhileError' });
    t.equal(await readFile(file, 'utf8'), withBlock(foreign), 'left as the other install wrote it');
    // Planned again from what is there, the change is a no-op write that keeps one block.
    await rewriteSharedFile(file, withBlock(foreign), withBlock);
    t.equal((await readFile(file, 'utf8')).match(/# BEGIN ours/g)?.length, 1, 'one block of ours');
  },
);
