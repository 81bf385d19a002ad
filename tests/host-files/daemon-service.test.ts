// The service runs `node <project>/dist/daemon/main.js --config ... --state-dir ... --socket ...`,
// the project found from the module's own location.
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import {
  currentDaemonProgram,
  daemonCommandLine,
  findProjectRoot,
  servicePath,
} from '../../daemon/host-files/daemon-service.js';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import { repoRoot, tempDir } from '../helpers/env.js';

t.test('the program is the node on PATH, unresolved, and dist/daemon/main.js of this checkout', async (t) => {
  const dir = await tempDir('node-link');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await symlink(process.execPath, join(dir, 'node'));
  const mainJs = join(repoRoot, 'dist', 'daemon', 'main.js');
  t.same(
    currentDaemonProgram({ PATH: `/nonexistent:${dir}:/usr/bin` }),
    { node: join(dir, 'node'), mainJs },
    'the link, not what it points to',
  );
  t.same(
    currentDaemonProgram({ PATH: '/nonexistent' }),
    { node: process.execPath, mainJs },
    'no node on PATH: the running binary',
  );
});

t.test('the project root is the nearest package.json named linuxkit-nix', async (t) => {
  const dir = await tempDir('proj');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'package.json'), '{"name":"linuxkit-nix"}');
  await mkdir(join(dir, 'node_modules', 'x', 'dist'), { recursive: true });
  await writeFile(join(dir, 'node_modules', 'x', 'package.json'), '{"name":"x"}');
  t.equal(
    findProjectRoot(pathToFileURL(join(dir, 'node_modules', 'x', 'dist', 'a.js')).href),
    dir,
    'another package on the way up is skipped',
  );
  t.throws(() => findProjectRoot(pathToFileURL('/a.js').href), /no linuxkit-nix package\.json above \/a\.js/);
});

t.test('PATH: tool folders first, the user profile for a user service, no duplicates', async (t) => {
  const alice = { name: 'alice', uid: 501, gid: 20, home: '/Users/alice' };
  t.equal(
    servicePath({ platform: 'darwin', scope: 'user', user: alice }, ['/nix/store/q/bin', '/usr/local/bin']),
    '/nix/store/q/bin:/usr/local/bin:/Users/alice/.nix-profile/bin:/etc/profiles/per-user/alice/bin:/opt/homebrew/bin:/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/bin:/bin:/usr/sbin:/sbin',
  );
  t.equal(
    servicePath({ platform: 'linux', scope: 'system', user: alice }, []),
    '/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin',
  );
});

t.test('the command line for messages quotes what a shell would split', async (t) => {
  const layout = installLayout({
    platform: 'darwin',
    scope: 'user',
    root: null,
    user: { name: 'a', uid: 501, gid: 20, home: "/Users/o'hara" },
  });
  t.equal(
    daemonCommandLine({ node: '/n', mainJs: '/m.js' }, layout),
    "/n /m.js --config '/Users/o'\\''hara/Library/Application Support/linuxkit-nix/config.json' --state-dir '/Users/o'\\''hara/Library/Application Support/linuxkit-nix' --socket '/Users/o'\\''hara/Library/Application Support/linuxkit-nix/daemon.sock'",
  );
});
