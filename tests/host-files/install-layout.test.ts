// Where install puts things, per platform and scope; who the daemon runs as; which ssh
// ControlPath fits the socket path limit.
import t from 'tap';
import { resolveServiceUser, type ProcessFacts } from '../../client/commands/cli-context.js';
import {
  chooseControlPathName,
  defaultScope,
  installLayout,
} from '../../daemon/host-files/install-layout.js';

const alice = { name: 'alice', uid: 501, gid: 20, home: '/Users/alice' };
const root = { name: 'root', uid: 0, gid: 0, home: '/var/root' };

t.test('paths per platform and scope', async (t) => {
  const ds = installLayout({ platform: 'darwin', scope: 'system', root: null, user: root });
  t.equal(ds.stateDir, '/var/lib/linuxkit-nix');
  t.equal(ds.service.file, '/Library/LaunchDaemons/org.nix-community.linuxkit-nix.plist');
  t.match(ds.service, { manager: 'launchd', domain: 'system', label: 'org.nix-community.linuxkit-nix' });
  t.equal(ds.machinesFile, '/etc/nix/machines');
  t.equal(ds.sshDropIn, '/etc/ssh/ssh_config.d/linuxkit-nix.conf');
  t.equal(ds.keys.clientKey, '/var/lib/linuxkit-nix/keys/client_ed25519');
  t.equal(ds.knownHostsFile, '/var/lib/linuxkit-nix/keys/known_hosts');

  const du = installLayout({ platform: 'darwin', scope: 'user', root: null, user: alice });
  t.equal(du.stateDir, '/Users/alice/Library/Application Support/linuxkit-nix');
  t.equal(du.service.file, '/Users/alice/Library/LaunchAgents/org.nix-community.linuxkit-nix.plist');
  t.match(du.service, { domain: 'gui/501' });

  const ls = installLayout({ platform: 'linux', scope: 'system', root: null, user: root });
  t.equal(ls.service.file, '/etc/systemd/system/linuxkit-nix.service');
  t.match(ls.service, { manager: 'systemd', userMode: false });

  const bob = { name: 'bob', uid: 1000, gid: 1000, home: '/home/bob' };
  const lu = installLayout({
    platform: 'linux',
    scope: 'user',
    root: null,
    user: bob,
    env: { XDG_STATE_HOME: '/x/state', XDG_CONFIG_HOME: '/x/config' },
  });
  t.equal(lu.stateDir, '/x/state/linuxkit-nix');
  t.equal(lu.service.file, '/x/config/systemd/user/linuxkit-nix.service');
  const lu2 = installLayout({
    platform: 'linux',
    scope: 'user',
    root: null,
    user: bob,
    env: { XDG_STATE_HOME: 'relative' },
  });
  t.equal(lu2.stateDir, '/home/bob/.local/state/linuxkit-nix', 'a relative XDG value is ignored');
  t.equal(lu2.service.file, '/home/bob/.config/systemd/user/linuxkit-nix.service');

  const r = installLayout({ platform: 'linux', scope: 'system', root: '/tmp/r', user: root });
  for (const p of [
    r.stateDir,
    r.machinesFile,
    r.sshDropIn,
    r.service.file,
    r.socketPath,
    r.manifestPath,
    r.sshConfig,
  ])
    t.ok(p.startsWith('/tmp/r/'), p);
  t.throws(
    () => installLayout({ platform: 'linux', scope: 'system', root: 'rel', user: root }),
    /--root must be an absolute directory; got "rel"/,
  );
});

t.test('a multi-user Nix gets a system install by default', async (t) => {
  t.equal(defaultScope({ nixDaemonSocketExists: true }), 'system');
  t.equal(defaultScope({ nixDaemonSocketExists: false, nixRemote: 'daemon' }), 'system');
  t.equal(defaultScope({ nixDaemonSocketExists: false }), 'user');
  t.equal(
    defaultScope({ nixDaemonSocketExists: false, processUid: 0 }),
    'system',
    'root without --system/--user: the system service, not a root user unit',
  );
  t.equal(defaultScope({ nixDaemonSocketExists: false, processUid: 1000 }), 'user');
});

t.test(
  'ControlPath: %C for root, %u-%C for a user, shorter tokens or none when the socket path would be too long',
  async (t) => {
    t.equal(
      chooseControlPathName('/var/lib/linuxkit-nix/ssh', 'darwin', 'system', {
        local: ['root'],
        remote: 'root',
      }),
      '%C',
    );
    t.equal(
      chooseControlPathName('/home/bob/.local/state/linuxkit-nix/ssh', 'linux', 'user', {
        local: ['bob', 'root'],
        remote: 'root',
      }),
      '%u-%C',
    );
    // A Mac user's state folder is deep: 58 bytes plus the name leave no room for a 40-byte hash.
    t.equal(
      chooseControlPathName('/Users/alice/Library/Application Support/linuxkit-nix/ssh', 'darwin', 'user', {
        local: ['alice', 'root'],
        remote: 'root',
      }),
      '%u-%r-%p',
    );
    t.equal(
      chooseControlPathName(
        `/Users/${'x'.repeat(40)}/Library/Application Support/linuxkit-nix/ssh`,
        'darwin',
        'user',
        { local: ['x'.repeat(40), 'root'], remote: 'root' },
      ),
      null,
    );
  },
);

const facts = (over: Partial<ProcessFacts>): ProcessFacts => ({
  platform: 'linux',
  uid: 1000,
  gid: 1000,
  username: 'bob',
  home: '/home/bob',
  env: {},
  ...over,
});

t.test('who the daemon runs as', async (t) => {
  t.same(resolveServiceUser('system', null, facts({})).user, { name: 'root', uid: 0, gid: 0, home: '/root' });
  t.same(resolveServiceUser('system', null, facts({ platform: 'darwin' })).user.home, '/var/root');
  const me = resolveServiceUser('user', null, facts({ env: { XDG_STATE_HOME: '/s' } }));
  t.same(me, {
    user: { name: 'bob', uid: 1000, gid: 1000, home: '/home/bob' },
    xdg: { XDG_STATE_HOME: '/s', XDG_CONFIG_HOME: undefined },
  });
  const sudo = resolveServiceUser(
    'user',
    null,
    facts({
      uid: 0,
      gid: 0,
      username: 'root',
      home: '/root',
      env: { SUDO_USER: 'bob', SUDO_UID: '1000', SUDO_GID: '100' },
    }),
    (n) => `/home/${n}`,
  );
  t.same(
    sudo,
    { user: { name: 'bob', uid: 1000, gid: 100, home: '/home/bob' }, actingForUser: 'bob', xdg: {} },
    'sudo --user installs for the sudo caller',
  );
  t.throws(
    () => resolveServiceUser('user', null, facts({ uid: 0, username: 'root' })),
    /--user installs for the user who runs it, and that is root here/,
  );
  t.equal(
    resolveServiceUser('user', '/tmp/r', facts({ uid: 0, username: 'root', home: '/root' })).user.name,
    'root',
    'allowed under --root, for trying',
  );
});
