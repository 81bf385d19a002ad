// buildVmSpec and the store disk: a start makes (or, with ephemeral, remakes) the disk; the spec
// built to clean up after a recorded VM only names it, so adoption never replaces a store.
import t from 'tap';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultConfig } from '../daemon/config/load.js';
import { builderKeyPaths } from '../daemon/keys/builder-keys.js';
import { buildVmSpec, guestAslr } from '../daemon/vm-spec.js';
import { tempDir } from './helpers/env.js';

async function setup(over: { diskGiB: number; ephemeral: boolean; guestAslr?: 'auto' | 'on' | 'off' }) {
  const stateDir = await tempDir('spec');
  const config = {
    ...defaultConfig({ platform: 'linux', arch: 'x64' }),
    ...over,
    // The config's own kernel and initrd: no guest image is built.
    image: { debian: { suites: ['bookworm'] }, kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0' },
  };
  const ctx = {
    stateDir,
    consoleDir: join(stateDir, 'console'),
    imageCacheDir: join(stateDir, 'image'),
    keys: {
      ...builderKeyPaths(join(stateDir, 'keys')),
      clientPublicKeyLine: '',
      hostPublicKeyLine: '',
      generated: false,
    },
    accel: 'tcg' as const,
  };
  return { stateDir, spec: (adopting: boolean) => buildVmSpec(config, ctx, { adopting }) };
}

async function mark(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from('store'), 0, 5, 4096);
  await fh.close();
}

async function marked(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(5);
  await fh.read(buf, 0, 5, 4096);
  await fh.close();
  return buf.toString() === 'store';
}

t.test('ephemeral: each start remakes the disk; the clean-up spec of adoption keeps it', async (t) => {
  const { stateDir, spec } = await setup({ diskGiB: 1, ephemeral: true });
  const disk = join(stateDir, 'nix-disk.raw');
  t.equal((await spec(false)).disk, disk);
  await mark(disk);
  t.equal((await spec(true)).disk, disk, 'adoption names the disk');
  t.equal(await marked(disk), true, 'and leaves it as it is');
  await spec(false);
  t.equal(await marked(disk), false, 'the next start has a fresh disk');
});

t.test('adoption with no disk yet creates none; diskGiB 0 names none', async (t) => {
  const { stateDir, spec } = await setup({ diskGiB: 2, ephemeral: false });
  t.equal((await spec(true)).disk, join(stateDir, 'nix-disk.raw'));
  await t.rejects(stat(join(stateDir, 'nix-disk.raw')), { code: 'ENOENT' });
  const ram = await setup({ diskGiB: 0, ephemeral: false });
  t.equal((await ram.spec(true)).disk, undefined);
  t.equal((await ram.spec(false)).disk, undefined);
});

t.test('guestAslr: auto turns it off under tcg only; on and off are kept as said', async (t) => {
  t.equal(guestAslr('auto', 'tcg'), false);
  t.equal(guestAslr('auto', 'kvm'), true);
  t.equal(guestAslr('auto', 'hvf'), true);
  for (const accel of ['tcg', 'kvm', 'hvf'] as const) {
    t.equal(guestAslr('on', accel), true, `on under ${accel}`);
    t.equal(guestAslr('off', accel), false, `off under ${accel}`);
  }
});

t.test("the spec carries the config's guestAslr for the start's accelerator", async (t) => {
  t.equal((await (await setup({ diskGiB: 0, ephemeral: false })).spec(false)).aslr, false, 'default, tcg');
  const on = await setup({ diskGiB: 0, ephemeral: false, guestAslr: 'on' });
  t.equal((await on.spec(false)).aslr, true, 'on, tcg');
});
