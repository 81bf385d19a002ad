// Without --root, install talks to the service manager. A dry run is safe to do for real: it
// only reads, asks systemctl/launchctl (here a stand-in) what is loaded, and lists the
// commands the real run would make.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import t from 'tap';
import { cli, recordingRunner } from './install-fixtures.js';

const TARGETS = [
  '/etc/nix/machines',
  '/etc/ssh/ssh_config.d/linuxkit-nix.conf',
  '/etc/systemd/system/linuxkit-nix.service',
  '/var/lib/linuxkit-nix',
  '/var/lib/linuxkit-nix/config.json',
  '/var/lib/linuxkit-nix/install-manifest.json',
];

function fingerprint(): string {
  return TARGETS.map((p) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return `${p} missing`;
    return st.isDirectory()
      ? `${p} dir ${st.mode}`
      : `${p} ${st.mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  }).join('\n');
}

t.test(
  'a real --dry-run asks systemd what is loaded and lists what it would run, changing nothing',
  async (t) => {
    const before = fingerprint();
    // systemd says: not active, not enabled.
    const runner = recordingRunner(() => ({ code: 3, stdout: 'inactive\n', stderr: '' }));
    const run = await cli('install', ['--system', '--dry-run'], { platform: 'linux', runner });
    t.equal(run.code, 0, run.err);
    t.same(
      runner.calls,
      [
        ['systemctl', 'is-active', '--quiet', 'linuxkit-nix.service'],
        ['systemctl', 'is-enabled', '--quiet', 'linuxkit-nix.service'],
      ],
      'only questions are asked',
    );
    t.match(run.out, /^would run: systemctl enable --now linuxkit-nix\.service$/m);
    t.equal(fingerprint(), before, 'nothing under / changed');
  },
);

t.test('a real --dry-run on macOS asks launchctl print and would bootstrap the LaunchDaemon', async (t) => {
  const before = fingerprint();
  const runner = recordingRunner(() => ({
    code: 113,
    stdout: '',
    stderr: 'Could not find service "org.nix-community.linuxkit-nix" in domain for system\n',
  }));
  const run = await cli('install', ['--system', '--dry-run'], { platform: 'darwin', runner });
  t.equal(run.code, 0, run.err);
  t.same(runner.calls, [['launchctl', 'print', 'system/org.nix-community.linuxkit-nix']]);
  t.match(
    run.out,
    'would run: launchctl enable system/org.nix-community.linuxkit-nix\nwould run: launchctl bootstrap system /Library/LaunchDaemons/org.nix-community.linuxkit-nix.plist\n',
  );
  t.equal(fingerprint(), before);
});

t.test('uninstall with nothing installed for real asks no service manager and says so', async (t) => {
  const runner = recordingRunner();
  const run = await cli('uninstall', ['--system', '--dry-run'], { platform: 'linux', runner });
  if (statSync('/var/lib/linuxkit-nix/install-manifest.json', { throwIfNoEntry: false })) {
    t.comment('this machine has a real system install; only checking that the dry run succeeded');
    t.equal(run.code, 0, run.err);
    return;
  }
  t.equal(run.code, 1);
  t.match(
    run.err,
    'nothing to uninstall: no install manifest at /var/lib/linuxkit-nix/install-manifest.json',
  );
  t.same(runner.calls, []);
});

t.test('uninstall calls the service manager only where one runs', async (t) => {
  const { serviceManagerUse } = await import('../../client/commands/uninstall.js');
  const yes = () => true;
  const no = () => false;
  t.same(serviceManagerUse(null, 'linux', yes), { call: true, note: null }, 'Linux with systemd');
  t.same(serviceManagerUse(null, 'darwin', no), { call: true, note: null }, 'macOS: launchd always runs');
  t.same(serviceManagerUse('/r', 'linux', yes), { call: false, note: null }, '--root never calls one');
  t.same(
    serviceManagerUse(null, 'linux', no),
    {
      call: false,
      note: 'systemd does not run on this machine (no /run/systemd/system): no service manager was called',
    },
    'a container without systemd: none called, and it says so',
  );
});
