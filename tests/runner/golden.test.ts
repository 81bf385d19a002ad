// The golden helper rewrites a golden only on request and never when CI is set.
import t from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkGolden, goldenMode } from '../helpers/golden.js';
import { tempDir } from '../helpers/env.js';

t.test(
  'goldenMode: compare by default, rewrite on UPDATE_GOLDEN=1, refused when CI is also set',
  async (t) => {
    t.equal(goldenMode({}), 'compare');
    t.equal(goldenMode({ UPDATE_GOLDEN: '0' }), 'compare');
    t.equal(goldenMode({ UPDATE_GOLDEN: '1' }), 'rewrite');
    t.equal(goldenMode({ UPDATE_GOLDEN: '1', CI: 'true' }), 'refused');
    t.equal(goldenMode({ CI: 'true' }), 'compare');
  },
);

/** Records what a golden check asserted, instead of asserting it. */
function recorder() {
  const calls: Array<{ kind: 'equal' | 'fail'; ok: boolean; message: string }> = [];
  return {
    calls,
    equal: (found: unknown, wanted: unknown, message: string) =>
      calls.push({ kind: 'equal', ok: found === wanted, message }),
    fail: (message: string) => calls.push({ kind: 'fail', ok: false, message }),
  };
}

t.test('under CI, UPDATE_GOLDEN=1 leaves the golden as it was and fails the check', async (t) => {
  const dir = await tempDir('golden');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'x.argv');
  await writeFile(file, 'old\n');

  const ci = recorder();
  await checkGolden(ci, file, 'new\n', { UPDATE_GOLDEN: '1', CI: 'true' });
  t.equal(await readFile(file, 'utf8'), 'old\n', 'the golden is untouched');
  t.match(ci.calls, [
    {
      kind: 'fail',
      message:
        /^UPDATE_GOLDEN=1 is refused because CI is set \(CI=true\).*x\.argv was compared, not rewritten$/,
    },
    { kind: 'equal', ok: false },
  ]);

  const local = recorder();
  await checkGolden(local, file, 'new\n', { UPDATE_GOLDEN: '1' });
  t.equal(await readFile(file, 'utf8'), 'new\n', 'outside CI the golden is rewritten on request');
  t.match(local.calls, [{ kind: 'equal', ok: true }]);

  const plain = recorder();
  await checkGolden(plain, file, 'newer\n', {});
  t.equal(await readFile(file, 'utf8'), 'new\n', 'without UPDATE_GOLDEN only compared');
  t.match(plain.calls, [{ kind: 'equal', ok: false }]);
});
