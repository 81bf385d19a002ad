import { join } from 'node:path';
import t from 'tap';
import { projectRoot } from '../daemon/project-root.js';
import { repoRoot } from './helpers/env.js';

t.test('the project root is found from the module, from sources and from dist/', async (t) => {
  t.equal(projectRoot(), repoRoot, 'the project root is found from the module');
  t.equal(projectRoot(join(repoRoot, 'dist', 'daemon', 'image')), repoRoot, 'also from the compiled module');
  t.throws(() => projectRoot('/'), {
    message: /^no package.json found above \/: cannot locate the project's files/,
  });
});
