// Reading nix.conf like Nix (includes, NIX_CONFIG, the default builders), and ssh_config's
// Include lines, to warn when the machines file or the drop-in would be ignored.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  buildersFromShowConfig,
  checkBuilders,
  machinesFilesIn,
  parseNixConfText,
  readBuildersFromFiles,
} from '../../client/install/nix-conf.js';
import { checkSshInclude, globToRegExp } from '../../client/install/ssh-include.js';
import { tempDir } from '../helpers/env.js';

t.test('nix.conf lines: settings, includes, comments, name=value', async (t) => {
  t.same(
    parseNixConfText(
      '# c\nbuilders = @/etc/nix/machines   # trailing\n!include extra.conf\ninclude /abs.conf\nsandbox=false\nbuilders =\n',
    ),
    [
      { kind: 'setting', name: 'builders', value: '@/etc/nix/machines', line: 2 },
      { kind: 'include', path: 'extra.conf', optional: true, line: 3 },
      { kind: 'include', path: '/abs.conf', optional: false, line: 4 },
      { kind: 'setting', name: 'sandbox', value: 'false', line: 5 },
      { kind: 'setting', name: 'builders', value: '', line: 6 },
    ],
  );
});

t.test('builders from files: the last one wins, includes are followed, NIX_CONFIG comes last', async (t) => {
  const dir = await tempDir('nixconf');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.same(
    await readBuildersFromFiles(dir, undefined),
    { builders: null, filesRead: [], problems: [] },
    'no nix.conf: not set',
  );
  await writeFile(join(dir, 'nix.conf'), 'builders = @/a\ninclude more.conf\n!include missing.conf\n');
  await writeFile(join(dir, 'more.conf'), 'builders = ssh://x x86_64-linux\n');
  const r = await readBuildersFromFiles(dir, undefined);
  t.same(r.builders, {
    value: 'ssh://x x86_64-linux',
    source: `${join(dir, 'more.conf')}:1`,
    file: join(dir, 'more.conf'),
    line: 1,
  });
  t.same(r.problems, [], 'a missing !include is fine');
  const env = await readBuildersFromFiles(dir, 'builders = @/etc/nix/machines');
  t.same(env.builders, { value: '@/etc/nix/machines', source: 'NIX_CONFIG' });
  await writeFile(join(dir, 'nix.conf'), 'include nope.conf\n');
  t.match(
    (await readBuildersFromFiles(dir, undefined)).problems,
    [/cannot read .*nope\.conf/],
    'a missing include is a problem',
  );
});

t.test('checkBuilders: default, included, hidden, and the fix offered', async (t) => {
  const base = { nixConfDir: '/etc/nix', machinesFile: '/etc/nix/machines' };
  t.match(checkBuilders({ ...base, setting: null }), { ok: true, value: '@/etc/nix/machines' });
  t.match(checkBuilders({ ...base, setting: { value: 'ssh://a x; @/etc/nix/machines', source: 'f:1' } }), {
    ok: true,
  });
  t.match(
    checkBuilders({ nixConfDir: '/other', machinesFile: '/etc/nix/machines', setting: null }),
    { ok: false },
    'NIX_CONF_DIR moves the default machines file',
  );
  const hidden = checkBuilders({
    ...base,
    setting: { value: '', source: '/etc/nix/nix.conf:3', file: '/etc/nix/nix.conf', line: 3 },
  });
  t.equal(hidden.ok, false);
  t.equal(
    hidden.message,
    "builders is '' (from /etc/nix/nix.conf:3), which hides /etc/nix/machines: Nix will not use the builder",
  );
  t.equal(
    hidden.fix,
    'in /etc/nix/nix.conf line 3, change the builders line to:\n    builders = @/etc/nix/machines',
  );
  const managed = checkBuilders({
    ...base,
    managedByNixTool: true,
    setting: { value: '@/etc/nix/other', source: '/etc/nix/nix.conf:1', file: '/etc/nix/nix.conf', line: 1 },
  });
  t.equal(
    managed.fix,
    '/etc/nix/nix.conf is a link into the Nix store: set it in the tool that writes it, not in the file (nix-darwin: nix.settings.builders; it also has nix.linux-builder):\n    nix.settings.builders = "@/etc/nix/machines ; @/etc/nix/other";',
  );
  const determinate = checkBuilders({
    ...base,
    editFile: '/etc/nix/nix.custom.conf',
    setting: { value: '', source: '/etc/nix/nix.conf:3', file: '/etc/nix/nix.conf', line: 3 },
  });
  t.equal(
    determinate.fix,
    'add this line to /etc/nix/nix.custom.conf (nix.conf includes it last; Determinate Nix rewrites nix.conf itself on upgrade):\n    builders = @/etc/nix/machines',
  );
  t.match(
    checkBuilders({ ...base, setting: { value: 'x', source: 'NIX_CONFIG' } }).fix,
    /NIX_CONFIG sets builders/,
  );
  t.same(machinesFilesIn('@/a ; ssh://b\n@ /c/../d'), ['/a', '/d']);
  t.equal(
    buildersFromShowConfig(
      'allowed-users = *\nbuilders = @/etc/nix/machines\nbuilders-use-substitutes = false\n',
    ),
    '@/etc/nix/machines',
  );
  t.equal(buildersFromShowConfig('builders = \n'), '');
  t.equal(buildersFromShowConfig('cores = 0\n'), null);
});

t.test('ssh_config Include: top level or Host *, globs, relative paths', async (t) => {
  const opts = { dropInPath: '/etc/ssh/ssh_config.d/linuxkit-nix.conf', platform: 'linux' as const };
  t.match(checkSshInclude('Include /etc/ssh/ssh_config.d/*.conf\n', opts), {
    included: true,
    line: 'Include /etc/ssh/ssh_config.d/*.conf',
  });
  t.match(checkSshInclude('Include /etc/ssh/ssh_config.d/*\n', opts), { included: true }, 'the macOS form');
  t.match(
    checkSshInclude('include ssh_config.d/*.conf\n', opts),
    { included: true },
    'relative to /etc/ssh, keyword in any case',
  );
  t.match(checkSshInclude('Include=/etc/ssh/ssh_config.d/*.conf\n', opts), { included: true });
  t.match(checkSshInclude('Host *\n  Include /etc/ssh/ssh_config.d/*.conf\n', opts), { included: true });
  t.match(
    checkSshInclude('Host foo\n  Include /etc/ssh/ssh_config.d/*.conf\n', opts),
    { included: false },
    'only for host foo',
  );
  t.match(
    checkSshInclude('# Include /etc/ssh/ssh_config.d/*.conf\n', opts),
    { included: false },
    'a comment',
  );
  t.match(checkSshInclude('Include /etc/ssh/ssh_config.d/*.cfg\n', opts), { included: false });
  const missing = checkSshInclude(null, { ...opts, platform: 'darwin' });
  t.match(missing, { included: false, fixLine: 'Include /etc/ssh/ssh_config.d/*' });
  t.match(missing.problem, /does not exist/);
  t.equal(checkSshInclude('', opts).fixLine, 'Include /etc/ssh/ssh_config.d/*.conf');
  t.ok(globToRegExp('/a/[!x]?.c*').test('/a/yz.conf'));
  t.notOk(globToRegExp('/a/*').test('/a/b/c'), '* stays within one folder');
});
