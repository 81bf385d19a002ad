// A launchctl stand-in that behaves as launchd is documented to: `bootout` returns at once while
// the job lingers (launchd waits up to ExitTimeOut for it to exit; ours powers its VM off
// first), `print` finds the job until it is gone, and `bootstrap` of the same label fails with
// 5 ("Input/output error") until then. It drives the command sequences install, reinstall and
// uninstall run (installCommands / uninstallStopCommands) through runPaced, on a fake clock.
import t from 'tap';
import { runPaced, type Pacing } from '../../client/install/launchd-pacing.js';
import type { CommandResult } from '../../client/install/run-command.js';
import {
  installCommands,
  uninstallStopCommands,
  type ServiceContext,
} from '../../client/install/service-commands.js';

const ctx: ServiceContext = {
  service: {
    manager: 'launchd',
    label: 'org.nix-community.linuxkit-nix',
    domain: 'system',
    file: '/Library/LaunchDaemons/org.nix-community.linuxkit-nix.plist',
  },
};
const TARGET = 'system/org.nix-community.linuxkit-nix';

function fakeLaunchd(opts: { lingerMs: number; loaded: boolean }) {
  let now = 0;
  let loaded = opts.loaded;
  let goneAt = 0;
  const calls: string[] = [];
  const pacing: Pacing = { now: () => now, sleep: async (ms) => void (now += ms) };
  const present = () => loaded || now < goneAt;
  const run = async (argv: string[]): Promise<CommandResult> => {
    calls.push(`${(now / 1000).toFixed(2)} ${argv.slice(0, 2).join(' ')}`);
    const [, verb] = argv;
    if (verb === 'print')
      return present()
        ? { code: 0, stdout: `${TARGET} = {\n\tstate = running\n}\n`, stderr: '' }
        : { code: 113, stdout: '', stderr: `Could not find service "${TARGET}"\n` };
    if (verb === 'bootout') {
      if (!loaded) return { code: 3, stdout: '', stderr: 'Boot-out failed: 3: No such process\n' };
      loaded = false;
      goneAt = now + opts.lingerMs; // returns at once; the job is still there for a while
      return { code: 0, stdout: '', stderr: '' };
    }
    if (verb === 'bootstrap') {
      if (now < goneAt) return { code: 5, stdout: '', stderr: 'Bootstrap failed: 5: Input/output error\n' };
      if (loaded)
        return { code: 37, stdout: '', stderr: 'Bootstrap failed: 37: Operation already in progress\n' };
      loaded = true;
      return { code: 0, stdout: '', stderr: '' };
    }
    return { code: 0, stdout: '', stderr: '' };
  };
  return { run, pacing, calls, isLoaded: () => loaded, present };
}

t.test('install on a Mac where the job is not loaded: enable, bootstrap, no waiting', async (t) => {
  const l = fakeLaunchd({ lingerMs: 8000, loaded: false });
  const r = await runPaced(
    installCommands(
      ctx,
      { loaded: false, enabled: false },
      { serviceFileChanged: true, restartNeeded: true },
    ),
    l.run,
    { exitTimeOutSec: 45, pacing: l.pacing },
  );
  t.equal(r.failure, null);
  t.same(r.notes, []);
  t.ok(l.isLoaded());
});

t.test(
  'reinstall with a changed plist: waits until print says the job is gone, then bootstraps once',
  async (t) => {
    const l = fakeLaunchd({ lingerMs: 8000, loaded: true });
    const r = await runPaced(
      installCommands(
        ctx,
        { loaded: true, enabled: true },
        { serviceFileChanged: true, restartNeeded: false },
      ),
      l.run,
      { exitTimeOutSec: 45, pacing: l.pacing },
    );
    t.equal(r.failure, null, 'the new plist is loaded');
    t.ok(l.isLoaded());
    t.same(
      r.commands.map((c) => [c.argv[1], c.code]),
      [
        ['bootout', 0],
        ['enable', 0],
        ['bootstrap', 0],
      ],
      'bootstrap never saw the lingering job',
    );
    t.match(r.notes, [
      /^waited 8\.0 s for launchd to remove system\/org\.nix-community\.linuxkit-nix after bootout$/,
    ]);
    t.comment(`launchctl calls: ${l.calls.length}, last at ${l.calls.at(-1)}`);
  },
);

t.test(
  'without the wait, bootstrap meets 5 and is retried until the job is gone (the bounded retry)',
  async (t) => {
    const l = fakeLaunchd({ lingerMs: 3000, loaded: true });
    await l.run(['launchctl', 'bootout', TARGET]); // someone else booted it out just now
    const r = await runPaced([['launchctl', 'bootstrap', 'system', ctx.service.file]], l.run, {
      exitTimeOutSec: 45,
      pacing: l.pacing,
      retryDelayMs: 1000,
    });
    t.equal(r.failure, null);
    t.match(r.notes, [/launchctl bootstrap succeeded after 4 attempts/]);
    const stuck = fakeLaunchd({ lingerMs: 60_000, loaded: true });
    await stuck.run(['launchctl', 'bootout', TARGET]);
    const gaveUp = await runPaced([['launchctl', 'bootstrap', 'system', ctx.service.file]], stuck.run, {
      exitTimeOutSec: 45,
      pacing: stuck.pacing,
      bootstrapAttempts: 5,
    });
    t.match(
      gaveUp.failure,
      /launchctl bootstrap .* failed \(exit 5\): Bootstrap failed: 5: Input\/output error/,
    );
    t.match(gaveUp.notes, [/still failed after 5 attempts/]);
  },
);

t.test(
  'uninstall: bootout returns only once the job is gone, so the socket probe after it is meaningful',
  async (t) => {
    const l = fakeLaunchd({ lingerMs: 20_000, loaded: true });
    const r = await runPaced(uninstallStopCommands(ctx, { loaded: true, enabled: true }), l.run, {
      exitTimeOutSec: 45,
      pacing: l.pacing,
    });
    t.equal(r.failure, null);
    t.notOk(l.present(), 'the job is gone when runPaced returns');
    t.match(r.notes, [/^waited 20\.0 s/]);
  },
);

t.test('a job that outlives ExitTimeOut plus the margin: a failure that says so, not a hang', async (t) => {
  const l = fakeLaunchd({ lingerMs: 10 * 60_000, loaded: true });
  const r = await runPaced(uninstallStopCommands(ctx, { loaded: true, enabled: true }), l.run, {
    exitTimeOutSec: 45,
    pacing: l.pacing,
    marginMs: 10_000,
  });
  t.match(
    r.failure,
    /^launchd still has system\/org\.nix-community\.linuxkit-nix 55\.\d s after bootout \(its ExitTimeOut is 45 s\)/,
  );
});
