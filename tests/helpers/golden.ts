// Golden files: compared always; rewritten only on request (UPDATE_GOLDEN=1) and never when CI is
// set, so a CI run can only ever read them and a stray UPDATE_GOLDEN cannot turn a diff green.
import { readFile, writeFile } from 'node:fs/promises';

export type GoldenMode = 'compare' | 'rewrite' | 'refused';

/** What a golden check does under these environment variables. */
export function goldenMode(env: NodeJS.ProcessEnv): GoldenMode {
  if (env.UPDATE_GOLDEN !== '1') return 'compare';
  return env.CI ? 'refused' : 'rewrite';
}

/** The part of a tap test a golden check uses (a fake stands in for it in the helper's own test). */
export interface GoldenAsserts {
  equal(found: unknown, wanted: unknown, message: string): unknown;
  fail(message: string): unknown;
}

/** Compares `actual` with the golden file, rewriting the file first when goldenMode says so. */
export async function checkGolden(
  t: GoldenAsserts,
  file: string,
  actual: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const mode = goldenMode(env);
  if (mode === 'rewrite') await writeFile(file, actual);
  if (mode === 'refused') {
    t.fail(
      `UPDATE_GOLDEN=1 is refused because CI is set (CI=${env.CI}): goldens change only in a reviewed commit; ${file} was compared, not rewritten`,
    );
  }
  t.equal(actual, await readFile(file, 'utf8'), `matches ${file}`);
}
