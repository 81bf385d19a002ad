// The launchctl/systemctl sequences install and uninstall run, as tables: load when not
// loaded, reload when the plist/unit changed, restart when only the keys changed, nothing
// when nothing changed.
import t from 'tap';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import {
  installCommands,
  restartHint,
  serviceQueries,
  startHint,
  uninstallAfterCommands,
  uninstallStopCommands,
} from '../../client/install/service-commands.js';

const alice = { name: 'alice', uid: 501, gid: 20, home: '/Users/alice' };
const root = { name: 'root', uid: 0, gid: 0, home: '/var/root' };
const service = (platform: 'darwin' | 'linux', scope: 'system' | 'user') =>
  installLayout({ platform, scope, root: null, user: scope === 'system' ? root : alice }).service;

const daemon = { service: service('darwin', 'system') };
const agent = { service: service('darwin', 'user') };
const unit = { service: service('linux', 'system') };
const userUnit = { service: service('linux', 'user') };
const plist = '/Library/LaunchDaemons/org.nix-community.linuxkit-nix.plist';

const none = { serviceFileChanged: false, restartNeeded: false };
const changed = { serviceFileChanged: true, restartNeeded: false };
const keys = { serviceFileChanged: false, restartNeeded: true };
const off = { loaded: false, enabled: false };
const on = { loaded: true, enabled: true };

t.test(
  'launchd: bootstrap, bootout + bootstrap on a new plist, kickstart -k for new keys, else nothing',
  async (t) => {
    t.same(installCommands(daemon, off, changed), [
      ['launchctl', 'enable', 'system/org.nix-community.linuxkit-nix'],
      ['launchctl', 'bootstrap', 'system', plist],
    ]);
    t.same(installCommands(daemon, on, changed), [
      ['launchctl', 'bootout', 'system/org.nix-community.linuxkit-nix'],
      ['launchctl', 'enable', 'system/org.nix-community.linuxkit-nix'],
      ['launchctl', 'bootstrap', 'system', plist],
    ]);
    t.same(installCommands(daemon, on, keys), [
      ['launchctl', 'kickstart', '-k', 'system/org.nix-community.linuxkit-nix'],
    ]);
    t.same(installCommands(daemon, on, none), [], 'a second install runs nothing');
    t.same(
      installCommands(daemon, off, none).map((c) => c[1]),
      ['enable', 'bootstrap'],
      'not loaded: load it even if nothing changed',
    );
    t.same(installCommands(agent, off, changed)[1], [
      'launchctl',
      'bootstrap',
      'gui/501',
      '/Users/alice/Library/LaunchAgents/org.nix-community.linuxkit-nix.plist',
    ]);
    t.same(serviceQueries(agent), {
      loaded: ['launchctl', 'print', 'gui/501/org.nix-community.linuxkit-nix'],
      enabled: null,
    });
    t.same(uninstallStopCommands(daemon, on), [
      ['launchctl', 'bootout', 'system/org.nix-community.linuxkit-nix'],
    ]);
    t.same(uninstallStopCommands(daemon, off), []);
    t.same(uninstallAfterCommands(daemon, true), []);
    t.equal(restartHint(daemon), 'launchctl kickstart -k system/org.nix-community.linuxkit-nix');
    t.equal(startHint(daemon), `launchctl bootstrap system '${plist}'`);
  },
);

t.test('systemd: daemon-reload on a new unit, enable --now, restart when running and changed', async (t) => {
  t.same(installCommands(unit, off, changed), [
    ['systemctl', 'daemon-reload'],
    ['systemctl', 'enable', '--now', 'linuxkit-nix.service'],
  ]);
  t.same(installCommands(unit, on, changed), [
    ['systemctl', 'daemon-reload'],
    ['systemctl', 'restart', 'linuxkit-nix.service'],
  ]);
  t.same(installCommands(unit, on, keys), [['systemctl', 'restart', 'linuxkit-nix.service']]);
  t.same(installCommands(unit, on, none), []);
  t.same(installCommands(unit, { loaded: true, enabled: false }, none), [
    ['systemctl', 'enable', '--now', 'linuxkit-nix.service'],
  ]);
  t.same(uninstallStopCommands(unit, on), [['systemctl', 'disable', '--now', 'linuxkit-nix.service']]);
  t.same(uninstallStopCommands(unit, off), []);
  t.same(uninstallAfterCommands(unit, true), [['systemctl', 'daemon-reload']]);
  t.same(uninstallAfterCommands(unit, false), []);
  t.same(serviceQueries(unit), {
    loaded: ['systemctl', 'is-active', '--quiet', 'linuxkit-nix.service'],
    enabled: ['systemctl', 'is-enabled', '--quiet', 'linuxkit-nix.service'],
  });
});

t.test('systemd --user: --user, and --machine=<user>@ when root acts for the user', async (t) => {
  t.same(installCommands(userUnit, off, changed), [
    ['systemctl', '--user', 'daemon-reload'],
    ['systemctl', '--user', 'enable', '--now', 'linuxkit-nix.service'],
  ]);
  t.same(installCommands({ ...userUnit, actingForUser: 'alice' }, off, none), [
    ['systemctl', '--user', '--machine=alice@', 'enable', '--now', 'linuxkit-nix.service'],
  ]);
  t.equal(restartHint(userUnit), 'systemctl --user restart linuxkit-nix.service');
  t.equal(
    startHint({ ...userUnit, actingForUser: 'alice' }),
    'systemctl --user --machine=alice@ enable --now linuxkit-nix.service',
  );
});
