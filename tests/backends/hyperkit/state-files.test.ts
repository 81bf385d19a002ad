// Who owns the hyperkit state directory's files, and the UUID that keeps the guest's address.
import t from 'tap';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hyperkitPaths } from '../../../daemon/backends/hyperkit/args.js';
import {
  ensureVpnkitUuid,
  liveHyperkit,
  ownsHyperkitPidFile,
  ownsVpnkitSockets,
} from '../../../daemon/backends/hyperkit/state-files.js';
import { tempDir } from '../../helpers/env.js';

t.test('a process owns the pid file only when started with -F and exactly that path', async (t) => {
  const id = (argv: string[]) => ({ executable: '/usr/local/bin/hyperkit', argv, startTime: '1' });
  const pidFile = '/Users/Ada Lovelace/state/hyperkit.pid';
  t.ok(ownsHyperkitPidFile(id(['hyperkit', '-A', '-F', pidFile, '-c', '2']), pidFile));
  // macOS ps gives one string: the path with its space still matches.
  t.ok(ownsHyperkitPidFile(id([`/usr/local/bin/hyperkit -A -F ${pidFile} -c 2`]), pidFile));
  t.notOk(ownsHyperkitPidFile(id(['hyperkit', '-F', `${pidFile}.old`]), pidFile), 'another pid file');
  t.notOk(ownsHyperkitPidFile(id(['sleep', '100']), pidFile), 'an unrelated process');
  t.ok(
    ownsVpnkitSockets(
      id(['vpnkit', '--ethernet', '/s/vpnkit_eth.sock', '--port', '/s/p']),
      '/s/vpnkit_eth.sock',
    ),
  );
  t.notOk(ownsVpnkitSockets(id(['vpnkit', '--ethernet', '/t/vpnkit_eth.sock']), '/s/vpnkit_eth.sock'));
});

t.test('liveHyperkit: no file, a dead pid and a live stranger are all "no live hyperkit"', async (t) => {
  const dir = await tempDir('sf');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const p = hyperkitPaths(dir);
  t.equal(await liveHyperkit(p), null, 'no pid file');
  await writeFile(p.pidFile, 'not a pid');
  t.equal(await liveHyperkit(p), null, 'garbage');
  await writeFile(p.pidFile, String(process.pid));
  t.equal(await liveHyperkit(p), null, 'this test process is alive but is no hyperkit');
});

t.test(
  'the vpnkit UUID is made once, kept, and replaced (with a note) when the file holds junk',
  async (t) => {
    const dir = await tempDir('sf');
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'vpnkit.uuid');
    const first = await ensureVpnkitUuid(file);
    t.match(first, {
      created: true,
      uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    });
    t.equal((await stat(file)).mode & 0o777, 0o600);
    t.same(await ensureVpnkitUuid(file), { uuid: first.uuid, created: false }, 'kept');
    await writeFile(file, 'C0FFEE00-0000-4000-8000-00000000ABCD\n');
    t.same(
      await ensureVpnkitUuid(file),
      { uuid: 'c0ffee00-0000-4000-8000-00000000abcd', created: false },
      'upper case is read',
    );
    await writeFile(file, 'oops');
    const replaced = await ensureVpnkitUuid(file);
    t.match(replaced, { created: true, replaced: 'oops' });
    t.equal((await readFile(file, 'utf8')).trim(), replaced.uuid);
  },
);
