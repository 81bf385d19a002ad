// What the service will run and where, checked at install and by doctor: a versioned node
// (Homebrew Cellar, Nix store) is warned about, node or main.js in a folder macOS keeps from
// launchd jobs is refused (on macOS only), and an SSH port another program listens on is
// refused naming that program: here the test process itself holds it.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { cli, PROGRAM } from './install-fixtures.js';

async function emptyRoot(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const root = await mkdtemp('/tmp/lk-prog-');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Connections (doctor's SSH to the "guest") are cut at once: the port is only held.
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const portOf = (s: Server) => (s.address() as { port: number }).port;
const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));

t.test('a versioned node path is installed with a warning saying why and what to use', async (t) => {
  for (const [platform, node, fix] of [
    [
      'darwin',
      '/opt/homebrew/Cellar/node/22.1.0/bin/node',
      /put Homebrew's stable link first on PATH \(\/opt\/homebrew\/bin\/node/,
    ],
    ['linux', '/nix/store/0abc-nodejs-22/bin/node', /~\/\.nix-profile\/bin\/node/],
  ] as const) {
    const root = await emptyRoot(t);
    const run = await cli('install', ['--root', root, '--system'], {
      platform,
      program: { ...PROGRAM, node },
    });
    t.equal(run.code, 0, run.err);
    t.match(run.out, `warning: the service runs node as ${node}`);
    t.match(run.out, fix);
  }
  const root = await emptyRoot(t);
  const stable = await cli('install', ['--root', root, '--system'], { platform: 'darwin' });
  t.notMatch(stable.out, /runs node as/, 'no warning for /usr/local/bin/node');
});

t.test('macOS: main.js in ~/Documents is refused before anything changes; Linux installs it', async (t) => {
  const program = {
    node: '/opt/homebrew/bin/node',
    mainJs: '/Users/alice/Documents/linuxkit-nix/dist/daemon/main.js',
  };
  const root = await emptyRoot(t);
  const mac = await cli('install', ['--root', root, '--user'], { platform: 'darwin', program });
  t.equal(mac.code, 1);
  t.match(
    mac.err,
    `the service would run ${program.mainJs}, in /Users/alice/Documents, which macOS privacy protection (TCC) keeps from launchd jobs`,
  );
  t.match(mac.err, /move the checkout out of \/Users\/alice\/Documents .*\(npm install -g\)/);
  t.match(mac.err, /Nothing was changed\.$/m);
  t.same(await readdir(root), [], 'nothing was written');

  const linux = await cli('install', ['--root', root, '--user'], {
    platform: 'linux',
    program: { ...program, mainJs: '/home/alice/Documents/lk/dist/daemon/main.js' },
  });
  t.equal(linux.code, 0, linux.err);
});

t.test(
  'an SSH port the test process listens on: install refuses naming this pid, changing nothing',
  async (t) => {
    const server = await listen();
    t.teardown(() => close(server));
    const port = portOf(server);
    const root = await emptyRoot(t);
    const run = await cli('install', ['--root', root, '--system', '--ssh-port', String(port)], {
      platform: 'linux',
    });
    t.equal(run.code, 1, 'refused');
    t.match(run.err, `the SSH port 127.0.0.1:${port} is taken by pid ${process.pid} (${process.execPath}`);
    t.match(
      run.err,
      `choose another port: linuxkitctl install --ssh-port N (it sets sshPort in ${root}/var/lib/linuxkit-nix/config.json)`,
    );
    t.same(await readdir(root), [], 'nothing was written');

    const named = await cli(
      'install',
      ['--root', root, '--system', '--builder', 'arm', '--ssh-port', String(port)],
      { platform: 'linux' },
    );
    t.match(
      named.err,
      'linuxkitctl install --builder arm --ssh-port N',
      'a named builder is told its own flag',
    );
  },
);

interface Check {
  id: string;
  ok: boolean;
  message: string;
  fix?: string;
}

t.test('doctor: the SSH port held by another program fails naming it; held by our VM passes', async (t) => {
  const probe = await listen();
  const port = portOf(probe);
  await close(probe);
  const root = await emptyRoot(t);
  const installed = await cli('install', ['--root', root, '--system', '--ssh-port', String(port)], {
    platform: 'linux',
  });
  t.equal(installed.code, 0, installed.err);
  const portCheck = async () => {
    const run = await cli('doctor', ['--root', root, '--json'], { platform: 'linux' });
    return (JSON.parse(run.out) as { checks: Check[] }).checks.find((c) => c.id === 'ssh-port')!;
  };
  t.match(await portCheck(), {
    ok: true,
    message: `the SSH port 127.0.0.1:${port} is free for the builder's VM`,
  });

  const server = await listen(port);
  t.teardown(() => close(server));
  const taken = await portCheck();
  t.match(taken, {
    ok: false,
    message: new RegExp(`^the SSH port 127\\.0\\.0\\.1:${port} is taken by pid ${process.pid} \\(`),
    fix: /stop that program, or choose another port/,
  });

  // The same listener recorded as this builder's VM (vm.json) is where it should be.
  await writeFile(
    join(root, 'var/lib/linuxkit-nix/vm.json'),
    JSON.stringify({ backend: 'qemu', pid: process.pid, argv: [], sshPort: port }),
  );
  t.match(await portCheck(), {
    ok: true,
    message: `the SSH port 127.0.0.1:${port} is held by this builder's VM, pid ${process.pid}`,
  });
});
