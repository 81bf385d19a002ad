import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireInstanceLock, StateDirLockedError } from '../../daemon/state/instance-lock.js';
import { tempDir } from '../helpers/env.js';
import { spawn } from 'node:child_process';

t.test('a second daemon on the same state directory is refused while the first runs', async (t) => {
  const dir = await tempDir('lock');
  const path = join(dir, 'daemon.lock');
  // A live process that looks like a linuxkitd holds the lock.
  const holder = spawn(process.execPath, ['-e', 'setTimeout(()=>{}, 30000)', 'linuxkitd'], {
    stdio: 'ignore',
  });
  t.teardown(() => holder.kill('SIGKILL'));
  await writeFile(path, `${holder.pid}\n`);
  await t.rejects(acquireInstanceLock(path, dir), StateDirLockedError);
  await t.rejects(acquireInstanceLock(path, dir), {
    message: /another linuxkitd \(pid \d+\) is already running on state directory/,
  });
});

t.test('a stale lock (its daemon is gone) is taken over, and release removes only our own', async (t) => {
  const dir = await tempDir('lock');
  const path = join(dir, 'daemon.lock');
  await writeFile(path, '999999\n');
  const lock = await acquireInstanceLock(path, dir);
  t.equal((await readFile(path, 'utf8')).trim(), String(process.pid));
  await lock.release();
  await t.rejects(readFile(path), /ENOENT/);
});

t.test('a pid that now belongs to another program does not hold the lock', async (t) => {
  const dir = await tempDir('lock');
  const path = join(dir, 'daemon.lock');
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => other.kill('SIGKILL'));
  await writeFile(path, `${other.pid}\n`);
  const lock = await acquireInstanceLock(path, dir);
  await lock.release();
});
