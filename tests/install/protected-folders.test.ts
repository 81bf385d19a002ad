// macOS privacy protection (TCC) keeps launchd jobs out of ~/Desktop, ~/Documents, ~/Downloads
// and /Volumes: protectedPathFinding names the first such path and the folder; never on Linux.
import t from 'tap';
import { protectedPathFinding } from '../../client/install/protected-folders.js';

const HOME = '/Users/alice';

t.test('which paths macOS keeps from a launchd job', async (t) => {
  const rows: Array<[string, string[], string | null]> = [
    [
      'a checkout in Documents',
      ['/opt/homebrew/bin/node', '/Users/alice/Documents/linuxkit-nix/dist/daemon/main.js'],
      '/Users/alice/Documents',
    ],
    ['on the Desktop', ['/Users/alice/Desktop/lk/dist/daemon/main.js'], '/Users/alice/Desktop'],
    [
      'in Downloads',
      ['/Users/alice/Downloads/linuxkit-nix-main/dist/daemon/main.js'],
      '/Users/alice/Downloads',
    ],
    ['node on an external disk', ['/Volumes/Work/node/bin/node'], '/Volumes'],
    [
      "another user's Documents (a --system install from bob's checkout)",
      ['/Users/bob/Documents/lk/main.js'],
      '/Users/bob/Documents',
    ],
    ['a home outside /Users', ['/home/alice/Documents/x.js'], null],
    [
      'the usual places',
      [
        '/opt/homebrew/bin/node',
        '/Users/alice/src/linuxkit-nix/dist/daemon/main.js',
        '/usr/local/lib/node_modules/linuxkit-nix/dist/daemon/main.js',
      ],
      null,
    ],
    [
      'a folder merely named like one',
      ['/Users/alice/DocumentsArchive/main.js', '/Users/alice/src/Documents/main.js', '/VolumesX/main.js'],
      null,
    ],
    [
      'dot segments are normalised first',
      ['/Users/alice/src/../Downloads/main.js'],
      '/Users/alice/Downloads',
    ],
  ];
  for (const [name, paths, folder] of rows) {
    const finding = protectedPathFinding({ paths, home: HOME, platform: 'darwin' });
    t.equal(finding?.folder ?? null, folder, name);
  }
  t.equal(
    protectedPathFinding({
      paths: ['/srv/home/a/Documents/main.js'],
      home: '/srv/home/a',
      platform: 'darwin',
    })?.folder,
    '/srv/home/a/Documents',
    "the service user's own home, wherever it is",
  );
});

t.test('the finding names the path, the folder, why and what to do', async (t) => {
  const main = '/Users/alice/Documents/linuxkit-nix/dist/daemon/main.js';
  const f = protectedPathFinding({ paths: ['/opt/homebrew/bin/node', main], home: HOME, platform: 'darwin' });
  t.match(f, {
    path: main,
    message: `the service would run ${main}, in /Users/alice/Documents, which macOS privacy protection (TCC) keeps from launchd jobs: the daemon would fail to start with "Operation not permitted", though this Terminal can read it`,
    fix: /move the checkout out of \/Users\/alice\/Documents \(e\.g\. to ~\/src\/linuxkit-nix\), or install linuxkit-nix globally \(npm install -g\)/,
  });
  t.match(protectedPathFinding({ paths: ['/Volumes/USB/lk/main.js'], home: HOME, platform: 'darwin' }), {
    message: /on another volume \(\/Volumes\)/,
    fix: /to the startup disk/,
  });
});

t.test('never on Linux: systemd has no such protection', async (t) => {
  t.equal(
    protectedPathFinding({
      paths: ['/Users/alice/Documents/main.js', '/Volumes/x/node'],
      home: HOME,
      platform: 'linux',
    }),
    null,
  );
});
