// The service's node is the first node on PATH as PATH names it (a stable link), never the
// resolved binary process.execPath gives (a Homebrew Cellar or Nix store path that goes away).
import t from 'tap';
import { findNodeOnPath, serviceNodePath, versionedNodeProblem } from '../../daemon/host-files/node-path.js';

const onDisk = (files: string[]) => (file: string) => files.includes(file);

t.test('findNodeOnPath: the first absolute PATH entry with an executable node', async (t) => {
  const cases: Array<{
    name: string;
    pathEnv: string | undefined;
    files: string[];
    platform?: NodeJS.Platform;
    want: string | null;
  }> = [
    {
      name: 'Homebrew link before the Cellar',
      pathEnv: '/opt/homebrew/bin:/opt/homebrew/Cellar/node/22.1.0/bin',
      files: ['/opt/homebrew/bin/node', '/opt/homebrew/Cellar/node/22.1.0/bin/node'],
      want: '/opt/homebrew/bin/node',
    },
    {
      name: 'entries without node are skipped',
      pathEnv: '/usr/bin:/Users/a/.nix-profile/bin',
      files: ['/Users/a/.nix-profile/bin/node'],
      want: '/Users/a/.nix-profile/bin/node',
    },
    {
      name: 'empty and relative entries are skipped (launchd has no current folder)',
      pathEnv: ':.:bin:/usr/local/bin',
      files: ['node', './node', 'bin/node', '/usr/local/bin/node'],
      want: '/usr/local/bin/node',
    },
    {
      name: 'a trailing slash is not doubled',
      pathEnv: '/usr/local/bin/',
      files: ['/usr/local/bin/node'],
      want: '/usr/local/bin/node',
    },
    { name: 'no node anywhere', pathEnv: '/usr/bin:/bin', files: [], want: null },
    { name: 'no PATH at all', pathEnv: undefined, files: ['/usr/bin/node'], want: null },
    {
      name: 'windows separators only on win32',
      pathEnv: 'C:\\node;/usr/bin',
      files: ['/usr/bin/node.exe'],
      platform: 'win32',
      want: '/usr/bin/node.exe',
    },
  ];
  for (const c of cases) {
    t.equal(
      findNodeOnPath({ pathEnv: c.pathEnv, platform: c.platform ?? 'darwin', isExecutable: onDisk(c.files) }),
      c.want,
      c.name,
    );
  }
});

t.test('serviceNodePath falls back to the running binary and says which it chose', async (t) => {
  const search = { pathEnv: '/usr/bin', platform: 'linux' as const };
  t.same(serviceNodePath({ ...search, isExecutable: () => false }, '/nix/store/abc-nodejs/bin/node'), {
    node: '/nix/store/abc-nodejs/bin/node',
    from: 'execPath',
  });
  t.same(serviceNodePath({ ...search, isExecutable: () => true }, '/nix/store/abc-nodejs/bin/node'), {
    node: '/usr/bin/node',
    from: 'PATH',
  });
});

t.test('versionedNodeProblem names Cellar and Nix store paths and what to use instead', async (t) => {
  const cellar = versionedNodeProblem('/opt/homebrew/Cellar/node/22.1.0/bin/node');
  t.match(cellar, {
    message:
      /\/opt\/homebrew\/Cellar\/node\/22\.1\.0\/bin\/node, a versioned Homebrew path: after brew upgrade/,
    fix: /\/opt\/homebrew\/bin\/node/,
  });
  t.match(versionedNodeProblem('/home/linuxbrew/.linuxbrew/Cellar/node/22/bin/node'), {
    message: /versioned Homebrew path/,
  });
  const store = versionedNodeProblem('/nix/store/0abc-nodejs-22/bin/node');
  t.match(store, {
    message: /in the Nix store: a garbage collection may delete it/,
    fix: /~\/\.nix-profile\/bin\/node/,
  });
  for (const stable of [
    '/opt/homebrew/bin/node',
    '/usr/local/bin/node',
    '/Users/a/.nix-profile/bin/node',
    '/run/current-system/sw/bin/node',
    '/usr/bin/node',
  ]) {
    t.equal(versionedNodeProblem(stable), null, stable);
  }
});
