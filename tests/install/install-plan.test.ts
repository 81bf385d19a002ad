// Planning install and uninstall as pure functions: what is recorded as created, added or
// changed, and what uninstall does when the files moved on since install.
import t from 'tap';
import { installLayout } from '../../daemon/host-files/install-layout.js';
import { mergeManifest, sha256, type InstallManifest } from '../../daemon/host-files/install-manifest.js';
import { planInstall, planUninstall, type DesiredFile } from '../../client/install/install-plan.js';
import { blockMarkers } from '../../daemon/host-files/managed-block.js';

const layout = installLayout({
  platform: 'linux',
  scope: 'system',
  root: '/r',
  user: { name: 'root', uid: 0, gid: 0, home: '/root' },
});
const { begin, end } = blockMarkers('linuxkit-nix');

const desired: DesiredFile[] = [
  {
    kind: 'whole',
    path: layout.configPath,
    content: '{"cpus":4}\n',
    mode: 0o644,
    owner: 'service',
    label: 'config',
  },
  {
    kind: 'block',
    path: layout.machinesFile,
    name: 'linuxkit-nix',
    body: 'ssh-ng://linuxkit-builder x - 1 1 - - K\n',
    mode: 0o644,
    owner: 'root',
    label: 'machines',
  },
];

function snapshot(entries: Record<string, string | null>): Map<string, string | null> {
  return new Map([
    [layout.configPath, null],
    [layout.machinesFile, null],
    [layout.manifestPath, null],
    ...Object.entries(entries),
  ]);
}

t.test(
  'first install: new files are created, existing ones recorded as changed with their old text',
  async (t) => {
    const plan = planInstall({
      layout,
      prior: null,
      current: snapshot({ [layout.configPath]: '{"cpus":3}\n', [layout.machinesFile]: 'foreign\n' }),
      missingDirs: [{ path: '/r/var', mode: 0o755, owner: 'root' }],
      missingKeyFiles: ['/r/k'],
      desired,
    });
    t.same(plan.manifest.createdFiles, ['/r/k']);
    t.same(plan.manifest.modified, [
      { file: layout.configPath, original: '{"cpus":3}\n', writtenSha256: sha256('{"cpus":4}\n') },
    ]);
    t.same(plan.manifest.blocks, [{ file: layout.machinesFile, name: 'linuxkit-nix', fileCreated: false }]);
    t.same(plan.manifest.createdDirs, ['/r/var']);
    t.same(
      plan.writes.map((w) => w.path),
      [layout.configPath, layout.machinesFile, layout.manifestPath],
    );
    t.equal(plan.writes[1].after, `foreign\n${begin}\nssh-ng://linuxkit-builder x - 1 1 - - K\n${end}\n`);
  },
);

t.test('second install keeps the first one\'s record: a created file stays "created"', async (t) => {
  const first = planInstall({
    layout,
    prior: null,
    current: snapshot({}),
    missingDirs: [],
    missingKeyFiles: [],
    desired,
  });
  t.same(first.manifest.createdFiles, [layout.configPath]);
  t.same(first.manifest.blocks, [{ file: layout.machinesFile, name: 'linuxkit-nix', fileCreated: true }]);
  const afterFirst = new Map([
    [layout.configPath, '{"cpus":4}\n'],
    [layout.machinesFile, first.writes[1].after],
    [layout.manifestPath, first.writes[2].after],
  ]);
  const second = planInstall({
    layout,
    prior: first.manifest,
    current: afterFirst,
    missingDirs: [],
    missingKeyFiles: [],
    desired,
  });
  t.same(second.writes, [], 'nothing to write');
  t.same(second.manifest, first.manifest);
  const changed = planInstall({
    layout,
    prior: first.manifest,
    current: afterFirst,
    missingDirs: [],
    missingKeyFiles: [],
    desired: [{ ...desired[0], content: '{"cpus":8}\n' } as DesiredFile, desired[1]],
  });
  t.same(changed.manifest.createdFiles, [layout.configPath], 'still created, not "modified"');
  t.same(changed.manifest.modified, []);
});

const manifest = (over: Partial<InstallManifest>): InstallManifest =>
  mergeManifest(
    null,
    {
      version: 1,
      scope: 'system',
      platform: 'linux',
      root: '/r',
      alias: 'linuxkit-builder',
      user: layout.user,
      service: layout.service,
      paths: {
        stateDir: layout.stateDir,
        configPath: layout.configPath,
        socketPath: layout.socketPath,
        keysDir: layout.keys.dir,
        knownHostsFile: layout.knownHostsFile,
        machinesFile: layout.machinesFile,
        sshDropIn: layout.sshDropIn,
      },
    },
    { createdDirs: [], createdFiles: [], blocks: [], modified: [], ...over },
  );

t.test('uninstall restores a changed file only if nobody touched it since', async (t) => {
  const m = manifest({
    modified: [{ file: layout.configPath, original: 'old\n', writtenSha256: sha256('ours\n') }],
  });
  const untouched = planUninstall(
    m,
    snapshot({ [layout.configPath]: 'ours\n', [layout.manifestPath]: '{}' }),
    layout.manifestPath,
  );
  t.same(untouched.steps[0], {
    path: layout.configPath,
    label: 'restored to its content before install',
    before: 'ours\n',
    after: 'old\n',
  });
  const edited = planUninstall(
    m,
    snapshot({ [layout.configPath]: 'edited\n', [layout.manifestPath]: '{}' }),
    layout.manifestPath,
  );
  t.same(
    edited.steps.map((s) => s.path),
    [layout.manifestPath],
    'the edited file is left alone',
  );
  t.match(edited.kept, [/config\.json: changed after install, so it stays as it is/]);
});

t.test("uninstall keeps a file it created when lines of someone else's were added to it", async (t) => {
  const m = manifest({
    blocks: [{ file: layout.machinesFile, name: 'linuxkit-nix', fileCreated: true }],
    createdDirs: ['/r/etc', '/r/etc/nix'],
  });
  const text = `${begin}\nours\n${end}\nsomeone else's\n`;
  const plan = planUninstall(m, snapshot({ [layout.machinesFile]: text }), layout.manifestPath);
  t.same(plan.steps, [
    { path: layout.machinesFile, label: 'managed block', before: text, after: "someone else's\n" },
  ]);
  t.match(plan.kept, [/install created it, but it now has lines of its own/]);
  t.same(plan.dirs, ['/r/etc/nix', '/r/etc'], 'folders deepest first');
  const alone = planUninstall(
    m,
    snapshot({ [layout.machinesFile]: `${begin}\nours\n${end}\n` }),
    layout.manifestPath,
  );
  t.same(
    alone.steps.map((s) => [s.path, s.after]),
    [[layout.machinesFile, null]],
    'only our block: the file goes',
  );
  const gone = planUninstall(m, snapshot({}), layout.manifestPath);
  t.same(gone.steps, [], 'already removed by hand: nothing to do');
});
