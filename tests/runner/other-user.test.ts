// Code run as another user comes from a copy that user can read, so a test that switches user
// works wherever the checkout is, even under a 0700 home. Checked here without a VM: the CLI copy
// runs as a second user and answers as the CLI does.
import t from 'tap';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ctlMain } from '../helpers/daemon-process.js';
import { requireTool } from '../helpers/env.js';
import { ensureSystemUser, readableCopy, runAsUser } from '../helpers/other-user.js';

requireTool('runuser');
requireTool('useradd');
const OTHER_USER = 'linuxkit-fuzz';

t.test(
  'the CLI copied for another user runs as that user, with no tap loader and no checkout access',
  async (t) => {
    const uid = ensureSystemUser(OTHER_USER);
    const copy = await readableCopy(ctlMain);
    t.teardown(() => rm(copy.dir, { recursive: true, force: true }));
    t.equal(
      ((await stat(copy.dir)).mode & 0o777).toString(8),
      '755',
      'the copy is in a directory anyone may enter',
    );
    t.ok(
      (await stat(join(copy.dir, 'node_modules', 'ssh2', 'package.json'))).isFile(),
      'with the npm packages the CLI imports',
    );

    const whoami = runAsUser(OTHER_USER, ['id', '-u']);
    t.equal(whoami.stdout.trim(), String(uid), `runs as ${OTHER_USER} (uid ${uid})`);
    const env = runAsUser(OTHER_USER, [
      process.execPath,
      '-e',
      'console.log(JSON.stringify(process.env.NODE_OPTIONS ?? null))',
    ]);
    t.equal(env.stdout.trim(), 'null', "tap's NODE_OPTIONS (its loader) is not passed on");

    const missing = join(copy.dir, 'no-daemon.sock');
    const cli = runAsUser(
      OTHER_USER,
      [process.execPath, copy.entry, '--socket', missing, 'status'],
      copy.dir,
    );
    t.equal(cli.status, 3, `exit 3: no daemon (stderr: ${cli.stderr.trim()})`);
    t.match(cli.stderr, `linuxkitd is not reachable at ${missing}: no socket there`);
  },
);
