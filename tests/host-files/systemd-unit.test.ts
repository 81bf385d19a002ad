// The systemd unit passes `systemd-analyze verify` (the systemd package, installed by
// scripts/install-deps.sh; it needs no running systemd), restarts the daemon always, and signals
// only the daemon (KillMode=process) so the VM in its own session survives a daemon restart for
// adoption.
import { execFile } from 'node:child_process';
import { rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { daemonServiceSpec } from '../../daemon/host-files/daemon-service.js';
import {
  parseSystemdUnit,
  parseSystemdWords,
  renderSystemdUnit,
  systemdWord,
} from '../../daemon/host-files/systemd-unit.js';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import { requireTool, tempDir } from '../helpers/env.js';

const run = promisify(execFile);
const alice = { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice' };

requireTool('systemd-analyze');

t.test('systemdWord escapes specifiers, variables, spaces, quotes and backslashes', async (t) => {
  t.equal(systemdWord('/usr/bin/node'), '/usr/bin/node');
  t.equal(systemdWord('/a b/c'), '"/a b/c"');
  t.equal(systemdWord('/50%/x'), '/50%%/x');
  t.equal(systemdWord('$HOME'), '$$HOME');
  t.equal(systemdWord('a"b\\c d'), '"a\\"b\\\\c d"');
  t.equal(systemdWord(''), '""');
  t.throws(() => systemdWord('a\nb'), /cannot put "a\\nb" in a systemd unit/);
});

t.test('parseSystemdWords and parseSystemdUnit read back exactly what the unit says', async (t) => {
  const words = ['/usr/bin/node', '/a b/c', '/50%/x', '$HOME', 'a"b\\c d', '', "it's;here", 'plain'];
  t.same(parseSystemdWords(words.map(systemdWord).join(' ')), words);
  const layout = installLayout({ platform: 'linux', scope: 'user', root: '/tmp/r 50%', user: alice });
  const spec = daemonServiceSpec(
    layout,
    { node: '/opt/node $v/bin/node', mainJs: '/srv/lk nix/dist/daemon/main.js' },
    { stopGraceMs: 20_000 },
    ['/opt/q emu/bin'],
  );
  const parsed = parseSystemdUnit(renderSystemdUnit(spec));
  t.same(parsed.execStart, spec.programArguments);
  t.same(parsed.environment, spec.environment);
  t.throws(() => parseSystemdUnit('[Service]\nType=simple\n'), /no ExecStart= line/);
  t.throws(() => parseSystemdWords('"open'), /unterminated quote/);
});

for (const scope of ['system', 'user'] as const) {
  t.test(`the ${scope} unit passes systemd-analyze verify`, async (t) => {
    const dir = await tempDir('unit');
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    // A real program so verify can check ExecStart; a path with a space and a % in it.
    const mainJs = join(dir, 'dist 100%', 'main.js');
    await mkdir(join(dir, 'dist 100%'));
    await writeFile(mainJs, '');
    const layout = installLayout({ platform: 'linux', scope, root: join(dir, 'root'), user: alice });
    const spec = daemonServiceSpec(layout, { node: process.execPath, mainJs }, { stopGraceMs: 20_000 });
    const unit = renderSystemdUnit(spec);
    t.match(unit, /^Restart=always$/m);
    t.match(unit, /^KillMode=process$/m);
    t.match(unit, /^TimeoutStopSec=30$/m, 'matches the stop grace plus the hard-stop steps');
    t.match(unit, `ExecStart=${process.execPath} "${join(dir, 'dist 100%%', 'main.js')}" --config`);
    t.match(unit, scope === 'system' ? /^WantedBy=multi-user\.target$/m : /^WantedBy=default\.target$/m);
    const file = join(dir, 'linuxkit-nix.service');
    await writeFile(file, unit);
    const { stdout, stderr } = await run('systemd-analyze', ['verify', file]);
    t.equal(stderr, '', 'systemd-analyze verify reports nothing');
    t.equal(stdout, '');
  });
}

t.test('systemd-analyze verify does catch a broken unit (the check above means something)', async (t) => {
  const dir = await tempDir('unit');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'linuxkit-nix.service');
  await writeFile(file, '[Service]\nExecStart=/nonexistent/node x\nKillMode=bogus\n');
  const err = await run('systemd-analyze', ['verify', file]).then(
    () => null,
    (e: { stderr: string }) => e,
  );
  t.ok(err, 'verify fails');
  t.match(err?.stderr ?? '', /kill mode|not executable/);
});
