// nix-darwin (nix.buildMachines, nix.linux-builder) and home-manager make /etc/nix/machines,
// the ssh_config.d folder or nix.conf links into the store (through /etc/static). Install must
// never replace such a link: it refuses, changes nothing, and prints what to add to the tool's
// configuration instead. Under --root, <ROOT>/etc/static stands in for /etc/static.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { discoverBuilders } from '../../client/install/nix-conf.js';
import { storeLinkTarget } from '../../client/install/store-links.js';
import { cli, treeSnapshot } from './install-fixtures.js';

async function darwinRoot(t: { teardown: (f: () => unknown) => void }): Promise<string> {
  const root = await mkdtemp('/tmp/lk-links-');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'etc/static/nix'), { recursive: true });
  await mkdir(join(root, 'etc/nix'), { recursive: true });
  return root;
}

t.test(
  'a store-linked /etc/nix/machines: install refuses and prints the nix.buildMachines entry',
  async (t) => {
    const root = await darwinRoot(t);
    await writeFile(
      join(root, 'etc/static/nix/machines'),
      'ssh-ng://builder@linux-builder aarch64-linux /etc/nix/builder_ed25519 4 1 kvm,benchmark,big-parallel - -\n',
    );
    await symlink(join(root, 'etc/static/nix/machines'), join(root, 'etc/nix/machines'));
    const before = treeSnapshot(root);
    const run = await cli('install', ['--root', root, '--system'], { platform: 'darwin' });
    t.equal(run.code, 1);
    t.match(
      run.err,
      `${root}/etc/nix/machines is a link into the Nix store (${root}/etc/static/nix/machines)`,
    );
    t.match(
      run.err,
      /\n {4}nix\.buildMachines = \[ \{\n {6}hostName = "linuxkit-builder";\n {6}protocol = "ssh-ng";\n {6}systems = \[ "x86_64-linux" \];\n {6}sshKey = ".*\/keys\/client_ed25519";/,
    );
    t.match(run.err, /nix\.distributedBuilds = true;\nNothing was changed\.\n$/);
    t.equal(treeSnapshot(root), before, 'nothing changed, the link is still a link');
    const dry = await cli('install', ['--root', root, '--system', '--dry-run'], { platform: 'darwin' });
    t.equal(dry.code, 1, '--dry-run says the same');
    t.match(dry.err, 'nix.buildMachines');
  },
);

t.test('a store-linked ssh_config.d: install refuses and prints programs.ssh.extraConfig', async (t) => {
  const root = await darwinRoot(t);
  await mkdir(join(root, 'etc/static/ssh/ssh_config.d'), { recursive: true });
  await mkdir(join(root, 'etc/ssh'), { recursive: true });
  await symlink(join(root, 'etc/static/ssh/ssh_config.d'), join(root, 'etc/ssh/ssh_config.d'));
  const before = treeSnapshot(root);
  const run = await cli('install', ['--root', root, '--system'], { platform: 'darwin' });
  t.equal(run.code, 1);
  t.match(run.err, `${root}/etc/ssh/ssh_config.d is a link into the Nix store`);
  t.match(
    run.err,
    /programs\.ssh\.extraConfig = ''\n {6}Host linuxkit-builder\n {8}HostName 127\.0\.0\.1\n {8}Port \d+\n/,
  );
  t.equal(treeSnapshot(root), before);
});

t.test(
  'a store-linked nix.conf that hides the machines file: install refuses with nix.settings.builders',
  async (t) => {
    const root = await darwinRoot(t);
    await writeFile(join(root, 'etc/static/nix/nix.conf'), 'builders = ssh://other x86_64-linux\n');
    await symlink(join(root, 'etc/static/nix/nix.conf'), join(root, 'etc/nix/nix.conf'));
    const before = treeSnapshot(root);
    const run = await cli('install', ['--root', root, '--system'], { platform: 'darwin' });
    t.equal(run.code, 1);
    t.match(
      run.err,
      `${root}/etc/nix/nix.conf is a link into the Nix store: set it in the tool that writes it`,
    );
    t.match(run.err, `nix.settings.builders = "@${root}/etc/nix/machines ; ssh://other x86_64-linux";`);
    t.equal(treeSnapshot(root), before);

    // The same nix.conf, read by Nix as the default (@machines): a link that does not hide us is fine.
    await writeFile(join(root, 'etc/static/nix/nix.conf'), 'sandbox = true\n');
    const ok = await cli('install', ['--root', root, '--system'], { platform: 'darwin' });
    t.equal(ok.code, 0, ok.err);
  },
);

t.test('discoverBuilders: store link, Determinate nix.custom.conf, plain nix.conf', async (t) => {
  const dir = await mkdtemp('/tmp/lk-nixconf-');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const conf = join(dir, 'nix.conf');
  await writeFile(conf, 'builders = \n!include nix.custom.conf\n');
  const determinate = await discoverBuilders(dir, undefined);
  t.match(
    determinate,
    { managedByNixTool: false, editFile: join(dir, 'nix.custom.conf') },
    'Determinate: the custom file, which nix.conf includes last',
  );
  await writeFile(conf, 'builders = \n');
  t.match(await discoverBuilders(dir, undefined), { managedByNixTool: false, editFile: conf });
  t.match(
    await discoverBuilders(dir, undefined, {
      storeLink: async (f) => (f === conf ? '/etc/static/nix/nix.conf' : null),
    }),
    { managedByNixTool: true, editFile: null },
  );
  await rm(conf);
  await symlink('/etc/static/nix/nix.conf', conf);
  t.equal(
    await storeLinkTarget(conf),
    '/etc/static/nix/nix.conf',
    'a dangling link into /etc/static still counts',
  );
  await rm(conf);
  await symlink('/nix/store/abc-nix.conf', conf);
  t.equal(await storeLinkTarget(conf), '/nix/store/abc-nix.conf');
  await rm(conf);
  await symlink('/home/admin/nix.conf', conf);
  t.equal(await storeLinkTarget(conf), null, "an admin's own link is theirs to have");
});
