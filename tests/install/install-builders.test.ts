// install / uninstall / doctor with --builder NAME under --root: a second builder beside the
// default one gets its own state folder, keys, config, unit or plist and its own blocks in the
// shared machines file and SSH drop-in; each uninstalls without touching the other; a second
// builder asking for the first one's SSH port is warned about.
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { readManagedBlock } from '../../daemon/host-files/managed-block.js';
import { tempDir } from '../helpers/env.js';
import { cli, treeSnapshot } from './install-fixtures.js';

t.test('linux --system: the default builder and "arm" side by side, each removed on its own', async (t) => {
  const root = await tempDir('ib2');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const first = await cli('install', ['--root', root, '--system']);
  t.equal(first.code, 0, first.err);
  const afterDefault = treeSnapshot(root);
  const machinesDefault = await readFile(join(root, 'etc/nix/machines'), 'utf8');
  const dropInDefault = await readFile(join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf'), 'utf8');

  const armRun = await cli('install', [
    '--root',
    root,
    '--system',
    '--builder',
    'arm',
    '--arch',
    'aarch64',
    '--ssh-port',
    '31123',
  ]);
  t.equal(armRun.code, 0, armRun.err);
  t.notMatch(armRun.out, /uses SSH port/, 'different ports: no warning');
  t.match(armRun.out, `linuxkitctl install (builder arm, system unit under ${root}, daemon runs as root)\n`);
  const state = join(root, 'var/lib/linuxkit-nix/builders/arm');
  t.match(armRun.out, `created ${state}/config.json (the daemon's config)`);
  t.match(armRun.out, `created ${root}/etc/systemd/system/linuxkit-nix-arm.service (systemd unit)`);
  t.match(armRun.out, `updated ${root}/etc/nix/machines (Nix machines file)`);

  const config = JSON.parse(await readFile(join(state, 'config.json'), 'utf8')) as {
    arch: string;
    systems: string[];
    sshPort: number;
  };
  t.same([config.arch, config.systems, config.sshPort], ['aarch64', ['aarch64-linux'], 31123]);
  const machines = await readFile(join(root, 'etc/nix/machines'), 'utf8');
  t.ok(machines.startsWith(machinesDefault), "the default builder's block stays as it was");
  t.match(
    readManagedBlock(machines, 'linuxkit-nix-arm'),
    new RegExp(
      `^ssh-ng://linuxkit-builder-arm aarch64-linux ${state}/keys/client_ed25519 2 1 benchmark,big-parallel - \\S+\\n$`,
    ),
  );
  const dropIn = await readFile(join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf'), 'utf8');
  t.ok(dropIn.startsWith(dropInDefault));
  t.match(
    readManagedBlock(dropIn, 'linuxkit-nix-arm'),
    /^Host linuxkit-builder-arm\n {2}HostName 127\.0\.0\.1\n {2}Port 31123\n {2}User root\n/,
  );
  t.match(readManagedBlock(dropIn, 'linuxkit-nix-arm'), `  IdentityFile ${state}/keys/client_ed25519\n`);
  t.match(readManagedBlock(dropIn, 'linuxkit-nix-arm'), '  HostKeyAlias linuxkit-builder-arm\n');
  t.match(
    await readFile(join(state, 'keys/known_hosts'), 'utf8'),
    /^linuxkit-builder-arm ssh-ed25519 \S+\n$/,
  );
  const unit = await readFile(join(root, 'etc/systemd/system/linuxkit-nix-arm.service'), 'utf8');
  t.match(unit, `--state-dir ${state} --socket ${state}/daemon.sock --builder arm\n`);
  t.match(unit, /^Description=linuxkit-nix: Linux builder VM for Nix \(linuxkitd, builder arm\)$/m);

  const again = await cli('install', ['--root', root, '--system', '--builder', 'arm']);
  t.equal(again.code, 0, again.err);
  t.match(
    again.out,
    /everything was already current: nothing changed/,
    'a second install of the builder is a no-op',
  );

  const doctor = await cli('doctor', ['--root', root, '--system', '--builder', 'arm', '--json']);
  const checks = (JSON.parse(doctor.out) as { checks: Array<{ id: string; ok: boolean; message: string }> })
    .checks;
  t.match(
    checks.find((c) => c.id === 'install')?.message,
    `installed (${state}/install-manifest.json)`,
    'doctor --builder arm looks at the arm install',
  );
  t.match(
    checks.find((c) => c.id === 'machines-entry'),
    { ok: true, message: /has the current entry for linuxkit-builder-arm/ },
  );

  const un = await cli('uninstall', ['--root', root, '--builder', 'arm']);
  t.equal(un.code, 0, un.err);
  t.match(un.out, `changed ${root}/etc/nix/machines (managed block)`);
  t.equal(
    await readFile(join(root, 'etc/nix/machines'), 'utf8'),
    machinesDefault,
    "the default builder's registration is untouched",
  );
  t.equal(await readFile(join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf'), 'utf8'), dropInDefault);
  t.notOk(existsSync(join(root, 'etc/systemd/system/linuxkit-nix-arm.service')));
  t.notOk(existsSync(state), "the arm builder's state folder is gone");
  t.equal(
    treeSnapshot(root),
    afterDefault.replace(/^d 0700 var\/lib\/linuxkit-nix\/builders\/\n/m, ''),
    'the tree is as after the default install',
  );

  const unDefault = await cli('uninstall', ['--root', root]);
  t.equal(unDefault.code, 0, unDefault.err);
  t.equal(treeSnapshot(root), '\n', 'the root is empty again');
});

t.test("a second builder on the first one's SSH port is warned about, naming both and the fix", async (t) => {
  const root = await tempDir('ib2');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  t.equal((await cli('install', ['--root', root, '--system'])).code, 0);
  const clash = await cli('install', ['--root', root, '--system', '--builder', 'arm', '--arch', 'aarch64']);
  t.equal(clash.code, 0, clash.err);
  t.match(
    clash.out,
    `warning: the default builder (${root}/var/lib/linuxkit-nix/config.json) uses SSH port 31122 too: only one of the two VMs can listen on it\n`,
  );
  t.match(
    clash.out,
    '  fix: give this one its own port: linuxkitctl install --builder arm --ssh-port N (a free port other than 31122)\n',
  );
  const fixed = await cli('install', ['--root', root, '--system', '--builder', 'arm', '--ssh-port', '31123']);
  t.notMatch(fixed.out, /uses SSH port/, 'gone once the ports differ');
  const back = await cli('install', ['--root', root, '--system', '--ssh-port', '31123']);
  t.match(
    back.out,
    `warning: builder arm (${root}/var/lib/linuxkit-nix/builders/arm/config.json) uses SSH port 31123 too`,
    'and the other way round',
  );
});

t.test(
  'macOS: a named builder is its own LaunchAgent, label org.nix-community.linuxkit-nix.NAME',
  async (t) => {
    const root = await tempDir('ib2');
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const run = await cli(
      'install',
      ['--root', root, '--user', '--builder', 'arm', '--arch', 'aarch64', '--ssh-port', '31123'],
      { platform: 'darwin' },
    );
    t.equal(run.code, 0, run.err);
    const plist = await readFile(
      join(root, 'Users/alice/Library/LaunchAgents/org.nix-community.linuxkit-nix.arm.plist'),
      'utf8',
    );
    t.match(plist, /<key>Label<\/key>\s*<string>org\.nix-community\.linuxkit-nix\.arm<\/string>/);
    t.match(plist, /<string>--builder<\/string>\s*<string>arm<\/string>/);
    t.match(
      plist,
      `<string>${root}/Users/alice/Library/Application Support/linuxkit-nix/builders/arm</string>`,
    );
  },
);

t.test('--builder with a name that cannot be one is refused before anything is written', async (t) => {
  const root = await tempDir('ib2');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  for (const command of ['install', 'uninstall', 'doctor'] as const) {
    const r = await cli(command, ['--root', root, '--builder', '../etc']);
    t.equal(r.code, 1, command);
    t.match(r.err, `linuxkitctl ${command}: --builder: a builder name is 1 to 16 characters`);
  }
  t.equal(treeSnapshot(root), '\n');
});
