// install / uninstall under --root: every file against tests/golden/install/ (temp root and
// key material normalised), uninstall back to a byte-identical tree, foreign lines kept, a
// second install a no-op, --ssh-port updated in place, --dry-run changing nothing.
// Regenerate the goldens with UPDATE_GOLDEN=1 (refused when CI is set) after an intended change, and review the diff.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import type { DaemonConfig } from '../../daemon/config/schema.js';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import { readManagedBlock } from '../../daemon/host-files/managed-block.js';
import { renderRegistration } from '../../daemon/host-files/registration-files.js';
import { repoRoot, tempDir } from '../helpers/env.js';
import { checkGolden } from '../helpers/golden.js';
import { cli, normaliser, recordingRunner, treeSnapshot, treeWithContents } from './install-fixtures.js';

const goldenDir = join(repoRoot, 'tests', 'golden', 'install');

/**
 * Absolute paths in installed files that are not under <ROOT>, leaving out PATH (the daemon
 * finds qemu where it really is) and the program (node and dist/ are not installed).
 */
function pathsOutsideRoot(text: string): string[] {
  const lines = text.split('\n');
  // The manifest's "home" names the service user's account, not a file of the install.
  const kept = lines.filter(
    (l, i) => !/PATH|"home":/.test(l) && !/<key>PATH<\/key>/.test(lines[i - 1] ?? ''),
  );
  const found = kept.join('\n').match(/(?<![\w<>.~:/-])\/[\w.-]+(\/[\w. -]*)*/g) ?? [];
  return found.filter(
    (p) => !p.startsWith('/usr/local/bin/node') && !p.startsWith('/opt/linuxkit-nix/dist/'),
  );
}

const CASES = [
  { name: 'linux-system', platform: 'linux', scope: '--system', keys: 'var/lib/linuxkit-nix/keys' },
  {
    name: 'linux-user',
    platform: 'linux',
    scope: '--user',
    keys: 'home/alice/.local/state/linuxkit-nix/keys',
  },
  { name: 'darwin-system', platform: 'darwin', scope: '--system', keys: 'var/lib/linuxkit-nix/keys' },
  {
    name: 'darwin-user',
    platform: 'darwin',
    scope: '--user',
    keys: 'Users/alice/Library/Application Support/linuxkit-nix/keys',
  },
] as const;

for (const c of CASES) {
  t.test(
    `${c.name}: install matches tests/golden/install/${c.name}.txt, uninstall leaves an empty root`,
    async (t) => {
      // Always /tmp, not $TMPDIR: the root's length decides whether an ssh ControlPath fits.
      const root = await mkdtemp('/tmp/lk-inst-');
      t.teardown(() => rm(root, { recursive: true, force: true }));
      const runner = recordingRunner();
      const run = await cli('install', ['--root', root, c.scope], { platform: c.platform, runner });
      t.equal(run.code, 0, run.err);
      t.equal(run.err, '');
      t.same(runner.calls, [], 'no service manager is called under --root');

      const normalise = normaliser(root, join(root, c.keys));
      const actual = `# linuxkitctl install --root <ROOT> ${c.scope} (${c.platform})\n${normalise(run.out)}\n${treeWithContents(root, normalise)}`;
      const file = join(goldenDir, `${c.name}.txt`);
      await checkGolden(t, file, actual);
      t.same(
        pathsOutsideRoot(treeWithContents(root, normalise)),
        [],
        'no written path points outside the root',
      );

      const un = await cli('uninstall', ['--root', root], { platform: c.platform, runner });
      t.equal(un.code, 0, un.err);
      t.equal(treeSnapshot(root), '\n', 'the root is empty again');
      t.same(runner.calls, []);
    },
  );
}

/** A root that already has Nix and SSH configured, with lines install must not touch. */
async function populatedRoot(): Promise<string> {
  const root = await tempDir('pop');
  const files: Record<string, string> = {
    'etc/nix/nix.conf': 'experimental-features = nix-command\nbuilders-use-substitutes = true\n',
    // No final newline: install must add one for its block and uninstall must take it away.
    'etc/nix/machines':
      '# my other builder\nssh://builder@other.example x86_64-linux /etc/nix/other_key 4 1 big-parallel - -',
    'etc/ssh/ssh_config': 'Include /etc/ssh/ssh_config.d/*.conf\n\nHost *\n    SendEnv LANG LC_*\n',
    'etc/ssh/ssh_config.d/other.conf': 'Host other.example\n  User builder\n',
    'etc/ssh/ssh_config.d/linuxkit-nix.conf': '# kept by the admin\nHost gateway\n  ProxyJump bastion\n',
    // A config from running the daemon by hand before installing.
    'var/lib/linuxkit-nix/config.json': '{\n  "cpus": 3\n}\n',
  };
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await writeFile(join(root, rel), text);
  }
  return root;
}

t.test(
  'on a populated root: foreign lines survive, reinstall is a no-op, --ssh-port updates in place, uninstall restores every byte',
  async (t) => {
    const root = await populatedRoot();
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const before = treeSnapshot(root);
    const machinesBefore = await readFile(join(root, 'etc/nix/machines'), 'utf8');
    const dropInBefore = await readFile(join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf'), 'utf8');

    const first = await cli('install', ['--root', root, '--system', '--cpus', '4']);
    t.equal(first.code, 0, first.err);
    t.notMatch(first.out, /ssh_config has no Include/, 'the Include line in ssh_config is recognised');
    t.notMatch(first.out, /hides/, 'builders is not set, so the machines file is read');
    const machines = await readFile(join(root, 'etc/nix/machines'), 'utf8');
    t.ok(
      machines.startsWith(`${machinesBefore}\n# BEGIN linuxkit-nix`),
      'the foreign lines come first, untouched, then our block',
    );
    t.match(
      machines,
      /^ssh-ng:\/\/linuxkit-builder x86_64-linux \S+\/keys\/client_ed25519 4 1 benchmark,big-parallel - [A-Za-z0-9+/=]+$/m,
      '8 fields, maxJobs follows --cpus',
    );
    const dropIn = await readFile(join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf'), 'utf8');
    t.ok(dropIn.startsWith(dropInBefore), 'the admin lines in the drop-in stay');
    t.match(dropIn, /^ {2}Port 31122$/m);
    const config = await readFile(join(root, 'var/lib/linuxkit-nix/config.json'), 'utf8');
    t.equal(config, '{\n  "cpus": 4\n}\n', 'only the given setting changed in the existing config');

    const afterFirst = treeSnapshot(root);
    const second = await cli('install', ['--root', root, '--system', '--cpus', '4']);
    t.equal(second.code, 0, second.err);
    t.match(second.out, /everything was already current: nothing changed/);
    t.equal(treeSnapshot(root), afterFirst, 'a second install changes no byte');

    const port = await cli('install', ['--root', root, '--system', '--ssh-port', '2222']);
    t.equal(port.code, 0, port.err);
    t.match(port.out, /updated \S+linuxkit-nix\.conf \(SSH drop-in\)/);
    const dropIn2 = await readFile(join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf'), 'utf8');
    t.equal(
      dropIn2,
      dropIn.replace('  Port 31122\n', '  Port 2222\n'),
      'the port changed in place and nothing else',
    );
    t.equal(
      await readFile(join(root, 'etc/nix/machines'), 'utf8'),
      machines,
      'the machines line carries no port, so it stays',
    );

    const un = await cli('uninstall', ['--root', root]);
    t.equal(un.code, 0, un.err);
    t.match(un.out, /changed \S+config\.json \(restored to its content before install\)/);
    t.equal(treeSnapshot(root), before, 'byte-identical to the tree before install');
  },
);

t.test('--dry-run prints diffs of every file it would touch and changes nothing', async (t) => {
  const root = await populatedRoot();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const before = treeSnapshot(root);
  const dry = await cli('install', ['--root', root, '--system', '--dry-run']);
  t.equal(dry.code, 0, dry.err);
  t.equal(treeSnapshot(root), before, 'no byte changed');
  t.match(dry.out, /nothing was changed/);
  t.match(dry.out, `--- ${root}/etc/nix/machines\n+++ ${root}/etc/nix/machines\n`);
  t.match(
    dry.out,
    '-ssh://builder@other.example x86_64-linux /etc/nix/other_key 4 1 big-parallel - -\n\\ No newline at end of file\n+ssh://builder@other.example',
  );
  t.match(
    dry.out,
    /\+ssh-ng:\/\/linuxkit-builder x86_64-linux \S+ 3 1 benchmark,big-parallel - <base64 of the new host public key>\n/,
    'maxJobs follows the existing config (cpus 3)',
  );
  t.match(dry.out, /\+linuxkit-builder ssh-ed25519 <new host key>\n/);
  t.match(
    dry.out,
    `# create ${root}/var/lib/linuxkit-nix/keys/client_ed25519 (ed25519 private key, mode 0600, made by ssh-keygen)`,
  );
  t.match(dry.out, `--- /dev/null\n+++ ${root}/etc/systemd/system/linuxkit-nix.service\n`);
  t.match(dry.out, `+++ ${root}/var/lib/linuxkit-nix/install-manifest.json\n`);
  t.notMatch(dry.out, /^# change \S+config\.json/m, 'an existing config without new settings is not touched');

  // Installed, then a dry run of a port change shows just that.
  t.equal((await cli('install', ['--root', root, '--system'])).code, 0);
  const installed = treeSnapshot(root);
  const dry2 = await cli('install', ['--root', root, '--system', '--ssh-port', '2200', '--dry-run']);
  t.equal(treeSnapshot(root), installed, 'no byte changed');
  t.match(dry2.out, /- {2}Port 31122\n\+ {2}Port 2200\n/);
  t.match(
    dry2.out,
    /- {2}"cpus": 3\n\+ {2}"cpus": 3,\n\+ {2}"sshPort": 2200\n/,
    'the hand-written config gets just the new key',
  );
  t.notMatch(dry2.out, /etc\/nix\/machines/, 'the machines file would not change');

  const dryUn = await cli('uninstall', ['--root', root, '--dry-run']);
  t.equal(dryUn.code, 0, dryUn.err);
  t.equal(treeSnapshot(root), installed, 'uninstall --dry-run changes nothing either');
  t.match(dryUn.out, `# remove ${root}/var/lib/linuxkit-nix/keys/client_ed25519: private key\n`);
  t.notMatch(dryUn.out, /PRIVATE KEY/, 'private keys are never printed');
  t.match(dryUn.out, /^-# BEGIN linuxkit-nix/m);
});

t.test('uninstall without an install says where it looked and fails', async (t) => {
  const root = await tempDir('none');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const un = await cli('uninstall', ['--root', root]);
  t.equal(un.code, 1);
  t.match(
    un.err,
    `nothing to uninstall: no install manifest at ${root}/var/lib/linuxkit-nix/install-manifest.json or ${root}/home/alice/.local/state/linuxkit-nix/install-manifest.json`,
  );
  t.equal(treeSnapshot(root), '\n');
});

t.test(
  'uninstall refuses while something that is not a linuxkitd answers on the socket (it cannot be shown to be ours), and removes nothing',
  async (t) => {
    const root = await mkdtemp('/tmp/lk-inst-');
    t.teardown(() => rm(root, { recursive: true, force: true }));
    t.equal((await cli('install', ['--root', root, '--system'])).code, 0);
    const socketPath = join(root, 'var/lib/linuxkit-nix/daemon.sock');
    const installed = treeSnapshot(root);
    // Reads what it is sent (so it sees the client hang up) and answers nothing: not a linuxkitd.
    const server = createServer((c) => c.resume().end());
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
    t.teardown(() => (server.listening ? stop() : undefined));
    const un = await cli('uninstall', ['--root', root, '--system']);
    t.equal(un.code, 1);
    t.match(
      un.err,
      `linuxkitd still answers on ${socketPath} and would restore what uninstall removes, and uninstall did not stop it: something listens on ${socketPath} but does not answer as linuxkitd`,
    );
    t.match(un.err, 'Stop it first (SIGTERM to the linuxkitd started with --state-dir');
    t.match(un.err, 'nothing was removed');
    const dry = await cli('uninstall', ['--root', root, '--system', '--dry-run']);
    t.equal(dry.code, 0, '--dry-run still shows what would go');
    t.match(
      dry.out,
      `note: linuxkitd answers on ${socketPath} without the service manager: uninstall stops it first`,
    );
    await stop();
    t.equal(treeSnapshot(root), installed, 'not a byte changed');
    // A socket file nobody listens on (a daemon that died) does not hold uninstall up.
    await writeFile(socketPath, '');
    const again = await cli('uninstall', ['--root', root, '--system']);
    t.equal(again.code, 0, again.err);
  },
);

t.test('install refuses bad settings and a broken config, naming them, and changes nothing', async (t) => {
  const root = await populatedRoot();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const before = treeSnapshot(root);
  const bad = await cli('install', ['--root', root, '--system', '--cpus', '0']);
  t.equal(bad.code, 1);
  t.match(bad.err, /--cpus must be an integer between 1 and 64; got 0/);
  const unknown = await cli('install', ['--root', root, '--system', '--cpu', '2']);
  t.equal(unknown.code, 1);
  t.match(unknown.err, /Unknown option '--cpu'/);
  const both = await cli('install', ['--root', root, '--system', '--user']);
  t.match(both.err, /--system and --user exclude each other/);
  await writeFile(join(root, 'var/lib/linuxkit-nix/config.json'), '{"cpus": "many"}\n');
  const broken = await cli('install', ['--root', root, '--system']);
  t.equal(broken.code, 1);
  t.match(
    broken.err,
    /config\.json is not a valid config; fix it first \(nothing was changed\):\n {2}cpus must be an integer between 1 and 64; got 'many'/,
  );
  await writeFile(join(root, 'var/lib/linuxkit-nix/config.json'), '{\n  "cpus": 3\n}\n');
  t.equal(treeSnapshot(root), before);
});

t.test(
  'a hidden builders setting is reported with the line that fixes it; nix.conf is not edited',
  async (t) => {
    const root = await populatedRoot();
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const conf = 'experimental-features = nix-command\nbuilders = ssh://other.example x86_64-linux\n';
    await writeFile(join(root, 'etc/nix/nix.conf'), conf);
    const run = await cli('install', ['--root', root, '--system']);
    t.equal(run.code, 0, run.err);
    t.match(
      run.out,
      `warning: builders is 'ssh://other.example x86_64-linux' (from ${root}/etc/nix/nix.conf:2), which hides ${root}/etc/nix/machines`,
    );
    t.match(
      run.out,
      `change the builders line to:\n    builders = @${root}/etc/nix/machines ; ssh://other.example x86_64-linux\n`,
    );
    t.equal(await readFile(join(root, 'etc/nix/nix.conf'), 'utf8'), conf, 'nix.conf is untouched');
  },
);

t.test('an ssh_config without the Include line gets the line to add; ssh_config is not edited', async (t) => {
  const root = await populatedRoot();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const sshConfig = 'Host *\n    SendEnv LANG LC_*\n';
  await writeFile(join(root, 'etc/ssh/ssh_config'), sshConfig);
  const run = await cli('install', ['--root', root, '--system'], { platform: 'darwin' });
  t.equal(run.code, 0, run.err);
  t.match(
    run.out,
    `warning: ${root}/etc/ssh/ssh_config has no Include line covering /etc/ssh/ssh_config.d/linuxkit-nix.conf`,
  );
  t.match(run.out, 'before any Host or Match line):\n    Include /etc/ssh/ssh_config.d/*\n');
  t.equal(await readFile(join(root, 'etc/ssh/ssh_config'), 'utf8'), sshConfig);
});

t.test("renderRegistration (for the daemon's drift repair) says exactly what install wrote", async (t) => {
  const root = await tempDir('reg');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  t.equal((await cli('install', ['--root', root, '--user', '--ssh-port', '2022'])).code, 0);
  const layout = installLayout({
    platform: 'linux',
    scope: 'user',
    root,
    user: { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice' },
    env: {},
  });
  const config = JSON.parse(await readFile(layout.configPath, 'utf8')) as DaemonConfig;
  const texts = renderRegistration(
    layout,
    config,
    (await readFile(layout.keys.hostPublicKey, 'utf8')).trim(),
  );
  t.equal(readManagedBlock(await readFile(layout.machinesFile, 'utf8'), 'linuxkit-nix'), texts.machinesBody);
  t.equal(readManagedBlock(await readFile(layout.sshDropIn, 'utf8'), 'linuxkit-nix'), texts.sshDropInBody);
  t.equal(await readFile(layout.knownHostsFile, 'utf8'), texts.knownHosts);
  // (Under a temp root the folder is too deep for %u-%C; the shorter %u-%r-%p is chosen.)
  t.match(
    texts.sshDropInBody,
    `ControlPath ${layout.controlDir}/%u-`,
    "a user install keeps root's and the user's sockets apart",
  );
});
