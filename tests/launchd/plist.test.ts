// The launchd job: built with the plist package, it parses back to the same object and has
// exactly the keys the daemon relies on (KeepAlive so launchd restarts it, logs kept, ...).
import t from 'tap';
import { parse } from 'plist';
import { LAUNCHD_JOB_KEYS, launchdJob, parseLaunchdPlist, renderLaunchdPlist } from '../../launchd/plist.js';
import { daemonServiceSpec } from '../../daemon/host-files/daemon-service.js';
import { installLayout } from '../../daemon/host-files/install-layout.js';

const alice = { name: 'alice', uid: 501, gid: 20, home: '/Users/alice' };
const program = { node: '/opt/homebrew/bin/node', mainJs: '/opt/linuxkit-nix/dist/daemon/main.js' };

for (const scope of ['system', 'user'] as const) {
  t.test(`the ${scope} job parses back to the same object with exactly the documented keys`, async (t) => {
    const layout = installLayout({ platform: 'darwin', scope, root: null, user: alice });
    const job = launchdJob(
      'org.nix-community.linuxkit-nix',
      daemonServiceSpec(layout, program, { stopGraceMs: 20_000 }, ['/opt/homebrew/bin']),
    );
    const xml = renderLaunchdPlist(job);
    const back = parse(xml) as Record<string, unknown>;
    t.same(back, job, 'plist.parse gives back the object that was built');
    t.same(Object.keys(back), [...LAUNCHD_JOB_KEYS], 'exactly these keys, in this order');
    t.same(Object.keys(back).sort(), [
      'EnvironmentVariables',
      'ExitTimeOut',
      'KeepAlive',
      'Label',
      'ProcessType',
      'ProgramArguments',
      'RunAtLoad',
      'StandardErrorPath',
      'StandardOutPath',
      'ThrottleInterval',
    ]);
    t.equal(back.KeepAlive, true);
    t.equal(back.RunAtLoad, true);
    t.equal(back.ExitTimeOut, 30, 'the 20 s ACPI grace plus the hard-stop steps');
    t.equal(back.ThrottleInterval, 10);
    t.equal(back.ProcessType, 'Standard');
    // biome-ignore format: option and value pairs, one per line, read as the command line
    t.same(back.ProgramArguments, [
      program.node, program.mainJs,
      '--config', `${layout.stateDir}/config.json`,
      '--state-dir', layout.stateDir,
      '--socket', `${layout.stateDir}/daemon.sock`,
    ]);
    t.equal(back.StandardOutPath, `${layout.stateDir}/log/service.stdout.log`);
    t.equal(back.StandardErrorPath, `${layout.stateDir}/log/service.stderr.log`);
    t.match(
      (back.EnvironmentVariables as Record<string, string>).PATH,
      /^\/opt\/homebrew\/bin:/,
      'the folder qemu was found in comes first, once',
    );
    t.equal(parseLaunchdPlist(xml, 'job.plist').Label, 'org.nix-community.linuxkit-nix');
    t.ok(
      xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist'),
      'an XML plist launchd reads',
    );
    t.ok(xml.endsWith('</plist>\n'));
  });
}

t.test('paths with spaces and XML characters survive the round trip', async (t) => {
  const layout = installLayout({ platform: 'darwin', scope: 'user', root: '/tmp/a & <b>', user: alice });
  const job = launchdJob(
    'org.nix-community.linuxkit-nix',
    daemonServiceSpec(layout, program, { stopGraceMs: 1500 }),
  );
  const xml = renderLaunchdPlist(job);
  t.match(xml, '/tmp/a &amp; &lt;b&gt;/Users/alice/Library/Application Support/linuxkit-nix');
  t.same(parse(xml), job);
  t.equal(job.ExitTimeOut, 12, 'a short grace still leaves time for the hard stop');
});

t.test('a bad label or a plist of something else is an error naming it', async (t) => {
  const layout = installLayout({ platform: 'darwin', scope: 'system', root: null, user: alice });
  const spec = daemonServiceSpec(layout, program, { stopGraceMs: 20_000 });
  t.throws(
    () => launchdJob('my label', spec),
    /launchd label must be letters, digits, '\.', '_' or '-'; got "my label"/,
  );
  const other =
    '<?xml version="1.0"?><plist version="1.0"><dict><key>Label</key><string>x</string></dict></plist>';
  t.throws(
    () => parseLaunchdPlist(other, '/Library/LaunchDaemons/x.plist'),
    /\/Library\/LaunchDaemons\/x\.plist is not a linuxkit-nix launchd job: missing ProgramArguments/,
  );
});
