// One probe for "does something listen here", read the same way by every caller.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { mayBeListening, probeUnixSocket } from '../../daemon/fs/unix-socket-probe.js';
import { tempDir } from '../helpers/env.js';

t.test(
  'a listener answers; a stale socket refuses; no file is absent; a plain file refuses (Linux) or is no socket',
  async (t) => {
    const dir = await tempDir('probe');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const live = join(dir, 'live.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(live, resolve));
    t.teardown(() => server.close());
    t.same(await probeUnixSocket(live), { state: 'answered' });

    const stale = join(dir, 'stale.sock');
    // A process that dies by SIGKILL while listening leaves its socket file behind.
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    t.same(await probeUnixSocket(stale), { state: 'refused' });
    t.same(await probeUnixSocket(join(dir, 'none.sock')), { state: 'absent' });
    const plain = join(dir, 'plain');
    writeFileSync(plain, '');
    const notSocket = await probeUnixSocket(plain);
    t.ok(
      notSocket.state === 'not-a-socket' || notSocket.state === 'refused',
      `a plain file: ${notSocket.state}`,
    );
  },
);

t.test('only answered, silent and unknown may be listening', async (t) => {
  t.equal(mayBeListening({ state: 'answered' }), true);
  t.equal(
    mayBeListening({ state: 'silent', timeoutMs: 1000 }),
    true,
    'a frozen listener still holds the socket',
  );
  t.equal(mayBeListening({ state: 'unknown', code: 'EACCES' }), true, 'what cannot be told is not removed');
  t.equal(mayBeListening({ state: 'refused' }), false);
  t.equal(mayBeListening({ state: 'absent' }), false);
  t.equal(mayBeListening({ state: 'not-a-socket' }), false);
});
