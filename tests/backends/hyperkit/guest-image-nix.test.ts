// nix/guest-image.nix cannot be built here (no nixpkgs, and hyperkit guests need an x86_64-linux
// builder with nixpkgs). What can be checked here: it parses; plain evaluation goes as far as
// <nixpkgs>; with a stub of the few nixpkgs functions it uses (stub-pkgs.nix) it evaluates, its
// /init is valid shell, and every file it borrows from guest/rootfs exists.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GUEST_READY_MARKER } from '../../../daemon/image/guest-contract.js';
import { repoRoot, requireTool, tempDir } from '../../helpers/env.js';

requireTool('nix-instantiate');
const expr = join(repoRoot, 'nix', 'guest-image.nix');
const stub = join(repoRoot, 'tests', 'backends', 'hyperkit', 'stub-pkgs.nix');

function evalJson(code: string): unknown {
  const out = execFileSync('nix-instantiate', ['--eval', '--strict', '--json', '-E', code], {
    cwd: repoRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out);
}

const withStub = `import ${expr} { pkgs = import ${stub}; }`;

t.test('nix/guest-image.nix parses', async (t) => {
  const r = spawnSync('nix-instantiate', ['--parse', expr], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
});

t.test('plain evaluation reaches <nixpkgs> (absent on these machines) or evaluates', async (t) => {
  const r = spawnSync('nix-instantiate', ['--eval', expr, '-A', 'cmdline'], { encoding: 'utf8' });
  if (r.status === 0) t.match(r.stdout, /console=ttyS0/, 'nixpkgs is installed here: it evaluates');
  else
    t.match(
      r.stderr,
      /file 'nixpkgs' was not found in the Nix search path/,
      'evaluation stops only at <nixpkgs>',
    );
});

t.test('with stubbed nixpkgs it evaluates: the command line the console ring reader relies on', async (t) => {
  const cmdline = evalJson(`(${withStub}).cmdline`) as string;
  for (const word of ['console=ttyS0', 'printk.time=1', 'printk.devkmsg=on', 'reboot=t']) {
    t.ok(cmdline.split(' ').includes(word), `cmdline has ${word}`);
  }
  t.notOk(cmdline.includes('"') || cmdline.includes(','), 'nothing hyperkit would mangle');
});

t.test('the rendered /init is valid shell, logs through /dev/kmsg, and says the ready marker', async (t) => {
  const init = evalJson(`(${withStub}).initScript`) as string;
  t.match(init, /^#!\/stub\/busybox\/bin\/sh\n/, 'the shebang is busybox sh from the store');
  t.notOk(/@[a-z]+@/.test(init), 'no placeholder left');
  t.ok(init.includes('echo "<5>linuxkit-nix: $*" > /dev/kmsg'), 'logs go through the kernel log');
  t.ok(
    init.includes('log "ssh ready"') && GUEST_READY_MARKER === 'linuxkit-nix: ssh ready',
    'prints the marker the daemon knows',
  );
  t.ok(
    init.includes('socat VSOCK-LISTEN:22,reuseaddr,fork TCP:127.0.0.1:22'),
    'the vsock counterpart of the bridge',
  );
  t.ok(init.includes('/guest-files/linuxkit'), 'reads the keys where the backend puts them');
  const dir = await tempDir('nix');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'init');
  await writeFile(file, init);
  for (const sh of ['sh', 'bash']) {
    const r = spawnSync(sh, ['-n', file], { encoding: 'utf8' });
    t.equal(r.status, 0, `${sh} -n: ${r.stderr}`);
  }
});

t.test('every file taken from guest/rootfs exists', async (t) => {
  const files = evalJson(`(${withStub}).etcFiles`) as string[];
  t.ok(files.length > 5);
  for (const f of files)
    t.ok(existsSync(join(repoRoot, 'guest', 'rootfs', 'etc', f)), `guest/rootfs/etc/${f}`);
});
