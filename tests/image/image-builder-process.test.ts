// The daemon's side of the image build: which mirrors it builds from (config, the host's apt
// sources, Debian's public mirror), the builder's command line, what counts as a killed builder's
// leftovers, and a real build cancelled midway against a local mirror that never answers one
// request: the builder process is gone, the error says "cancelled", nothing partial is left.
import t from 'tap';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  ImageBuildCancelledError,
  imageBuilderArgs,
  imageBuilderScript,
  isLeftoverOf,
  runImageBuilder,
} from '../../daemon/image/build-process.js';
import { ensureGuestImage, defaultGuestDir } from '../../daemon/image/guest-image.js';
import { aptMirrors } from '../../daemon/image/debian/apt-sources.js';
import {
  chooseDebianSettings,
  DEFAULT_SUITES,
  PUBLIC_MIRROR,
  PUBLIC_SECURITY_MIRROR,
} from '../../daemon/image/debian/settings.js';
import { debianSettingsForHost } from '../../daemon/image/image-settings.js';
import { requireBuild } from '../helpers/daemon-process.js';
import { tempDir } from '../helpers/env.js';

const suites = DEFAULT_SUITES;

t.test(
  'mirrors: the config first, then the host apt sources carrying the suite, then the public mirror',
  async (t) => {
    const apt = {
      mirror: 'http://apt.example/debian',
      securityMirror: 'http://apt.example/debian-security',
      files: '/etc/apt/sources.list',
    };
    t.same(
      chooseDebianSettings(
        { suites, mirror: 'http://c.example/debian', securityMirror: 'http://c.example/sec' },
        apt,
      ),
      {
        settings: { mirror: 'http://c.example/debian', securityMirror: 'http://c.example/sec', suites },
        from: { mirror: 'image.debian in the config', securityMirror: 'image.debian in the config' },
      },
    );
    t.match(chooseDebianSettings({ suites }, apt), {
      settings: { mirror: apt.mirror, securityMirror: apt.securityMirror },
      from: { mirror: 'apt sources (/etc/apt/sources.list)' },
    });
    t.match(chooseDebianSettings({ suites }, { mirror: null, securityMirror: null, files: '' }), {
      settings: { mirror: PUBLIC_MIRROR, securityMirror: PUBLIC_SECURITY_MIRROR },
      from: { mirror: "Debian's public mirror (the default)" },
    });
    t.same(
      chooseDebianSettings({ suites, snapshot: 'http://s.example/{archive}/2025' }, apt).settings.snapshot,
      'http://s.example/{archive}/2025',
    );
  },
);

t.test(
  'apt sources: an Ubuntu or third-party source does not count as a Debian bookworm mirror',
  async (t) => {
    const ubuntu =
      'deb http://archive.ubuntu.com/ubuntu noble main\ndeb http://security.ubuntu.com/ubuntu noble-security main\n';
    const thirdParty =
      'Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n';
    t.same(aptMirrors([ubuntu, thirdParty], ['bookworm', 'bookworm-security']), {
      mirror: null,
      securityMirror: null,
    });
    const debian =
      'Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n\nTypes: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\n';
    t.same(aptMirrors([thirdParty, debian], ['bookworm', 'bookworm-security']), {
      mirror: 'http://m.example/debian',
      securityMirror: 'http://m.example/debian-security',
    });

    const aptDir = await tempDir('apt');
    await mkdir(join(aptDir, 'sources.list.d'));
    await writeFile(join(aptDir, 'sources.list.d', 'node.sources'), thirdParty);
    await writeFile(join(aptDir, 'sources.list.d', 'debian.sources'), debian);
    await writeFile(join(aptDir, 'sources.list.d', 'old.list.disabled'), ubuntu);
    const chosen = await debianSettingsForHost({ suites }, aptDir);
    t.equal(chosen.settings.mirror, 'http://m.example/debian');
    t.equal(
      chosen.from.mirror,
      `apt sources (${join(aptDir, 'sources.list.d', 'debian.sources')}, ${join(aptDir, 'sources.list.d', 'node.sources')})`,
    );
    const none = await debianSettingsForHost({ suites }, join(aptDir, 'missing'));
    t.equal(none.settings.mirror, PUBLIC_MIRROR, 'no apt at all (a Mac): the public mirror');
  },
);

t.test("the builder's command line", async (t) => {
  t.same(
    imageBuilderArgs({
      arch: 'aarch64',
      cacheDir: '/c',
      guestDir: '/g',
      settings: {
        mirror: 'http://m/debian',
        securityMirror: 'http://m/sec',
        suites: ['bookworm', 'bookworm-security'],
        snapshot: 'http://s/{archive}',
      },
    }),
    [
      imageBuilderScript(),
      '--arch',
      'aarch64',
      '--cache',
      '/c',
      '--guest-dir',
      '/g',
      '--mirror',
      'http://m/debian',
      '--security-mirror',
      'http://m/sec',
      '--suites',
      'bookworm,bookworm-security',
      '--snapshot',
      'http://s/{archive}',
    ],
  );
});

t.test(
  "a killed builder's leftovers are its build folder and its atomic-write temp files, no one else's",
  async (t) => {
    t.ok(isLeftoverOf('.build-0123abcd-4242-9f9f9f9f', 4242));
    t.ok(isLeftoverOf('.0123.deb.4242.a1b2c3d4e5f6.tmp', 4242));
    t.notOk(isLeftoverOf('.build-0123abcd-4243-9f9f9f9f', 4242), "another builder's folder");
    t.notOk(isLeftoverOf('.0123.deb.42421.a1b2c3d4e5f6.tmp', 4242), 'a pid that only starts with ours');
    t.notOk(isLeftoverOf('0123abcd0123abcd0123abcd', 4242), 'an image');
    t.notOk(isLeftoverOf('debian-x86_64-0123.json', 4242), 'a resolution record');
  },
);

t.test(
  'a build cancelled while the mirror keeps it waiting: the builder is killed, nothing partial is left',
  async (t) => {
    requireBuild();
    const requests: string[] = [];
    const server = createServer((req) => requests.push(req.url ?? '')); // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(() => {
      server.closeAllConnections();
      server.close();
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cacheDir = await tempDir('cancel-cache');
    const abort = new AbortController();
    const build = runImageBuilder({
      arch: 'x86_64',
      cacheDir,
      guestDir: defaultGuestDir(),
      settings: { mirror: `${base}/debian`, securityMirror: `${base}/debian-security`, suites },
      signal: abort.signal,
    });
    while (requests.length === 0) await new Promise((r) => setTimeout(r, 50));
    abort.abort();
    await t.rejects(build, ImageBuildCancelledError);
    t.same(await readdir(cacheDir), [], 'the cache holds nothing of the cancelled build');
    await t.rejects(
      ensureGuestImage({
        arch: 'x86_64',
        cacheDir,
        settings: { mirror: `${base}/debian`, securityMirror: `${base}/debian-security`, suites },
        signal: AbortSignal.abort(),
      }),
      ImageBuildCancelledError,
      'an already-aborted build never starts',
    );
  },
);

t.test("a failed build is an error naming the builder's own reason", async (t) => {
  requireBuild();
  const cacheDir = await tempDir('fail-cache');
  // Nothing listens on port 1: the builder cannot reach the mirror and has no image to fall back on.
  await t.rejects(
    runImageBuilder({
      arch: 'x86_64',
      cacheDir,
      guestDir: defaultGuestDir(),
      settings: {
        mirror: 'http://127.0.0.1:1/debian',
        securityMirror: 'http://127.0.0.1:1/debian-security',
        suites,
      },
    }),
    {
      message:
        /^the x86_64 guest image build failed \(the builder exited with code 1\): cannot build the x86_64 guest image: the Debian mirror http:\/\/127\.0\.0\.1:1\/debian.* cannot be reached/,
    },
  );
  t.same(
    (await readdir(cacheDir)).filter((n) => n.startsWith('.')),
    [],
    'no temporary files left',
  );
});
