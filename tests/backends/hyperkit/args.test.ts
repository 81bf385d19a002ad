// The vpnkit and hyperkit command lines are pinned by golden files (one argument per line,
// argv[0] first). Regenerate with UPDATE_GOLDEN=1 (refused when CI is set) after an intended change, and review the diff.
import t from 'tap';
import { join } from 'node:path';
import type { VmSpec } from '../../../daemon/backend.js';
import {
  buildHyperkitArgs,
  buildVpnkitArgs,
  hyperkitCmdline,
  hyperkitPaths,
  vsockConnectHeader,
} from '../../../daemon/backends/hyperkit/args.js';
import { GUEST_VSOCK_SWITCH } from '../../../daemon/image/guest-contract.js';
import { repoRoot } from '../../helpers/env.js';
import { checkGolden } from '../../helpers/golden.js';

const goldenDir = join(repoRoot, 'tests', 'golden', 'hyperkit');
const uuid = '6e2f0a52-2a43-4f4b-9c0e-0b6f5d3c1a7e';

const base: VmSpec = {
  arch: 'x86_64',
  accel: 'hvf',
  cpus: 2,
  memoryMiB: 2048,
  kernel: '/Users/ada/Library/Caches/linuxkit-nix/image/abc/bzImage',
  initrd: '/Users/ada/Library/Caches/linuxkit-nix/image/abc/initrd',
  cmdline: 'console=ttyS0 loglevel=6 printk.time=1 panic=-1',
  sshPort: 24083,
  stateDir: '/Users/ada/.local/state/linuxkit-nix',
  consoleLog: '/Users/ada/.local/state/linuxkit-nix/console/boot-1.log',
  guestFiles: {},
};

const spaces: VmSpec = {
  ...base,
  kernel: '/Users/Ada Lovelace/Library/Application Support/linuxkit-nix/image/abc/bzImage',
  initrd: '/Users/Ada Lovelace/Library/Application Support/linuxkit-nix/image/abc/initrd',
  stateDir: '/Users/Ada Lovelace/Library/Application Support/linuxkit-nix/state',
  consoleLog: '/Users/Ada Lovelace/Library/Application Support/linuxkit-nix/state/console/boot 1.log',
  disk: '/Users/Ada Lovelace/Library/Application Support/linuxkit-nix/state/nix disk.img',
  // Commas are fine in the command line: hyperkit takes everything after the third comma.
  cmdline: 'console=ttyS0 printk.time=1 linuxkit.tags=a,b',
};

const hyperkitCases: Array<{ name: string; spec: VmSpec; hyperkitBinary?: string; initrd?: string }> = [
  { name: 'hyperkit-default', spec: base },
  {
    name: 'hyperkit-disk',
    spec: { ...base, cpus: 4, memoryMiB: 8192, disk: '/Users/ada/.local/state/linuxkit-nix/nix-disk.img' },
  },
  {
    name: 'hyperkit-spaces',
    spec: spaces,
    hyperkitBinary: '/Applications/Docker Desktop.app/Contents/Resources/bin/hyperkit',
    initrd: '/Users/Ada Lovelace/Library/Application Support/linuxkit-nix/state/boot-initrd.img',
  },
];

for (const c of hyperkitCases) {
  t.test(`hyperkit argv for ${c.name} matches tests/golden/hyperkit/${c.name}.argv`, async (t) => {
    const { executable, argv } = buildHyperkitArgs(c.spec, {
      vpnkitUuid: uuid,
      hyperkitBinary: c.hyperkitBinary,
      initrd: c.initrd,
      platform: 'darwin',
    });
    const actual = [executable, ...argv].join('\n') + '\n';
    const file = join(goldenDir, `${c.name}.argv`);
    await checkGolden(t, file, actual);
  });
}

const vpnkitCases: Array<{ name: string; spec: VmSpec; vpnkitBinary?: string }> = [
  { name: 'vpnkit-default', spec: base },
  {
    name: 'vpnkit-spaces',
    spec: spaces,
    vpnkitBinary: '/Applications/Docker Desktop.app/Contents/Resources/bin/vpnkit',
  },
];

for (const c of vpnkitCases) {
  t.test(`vpnkit argv for ${c.name} matches tests/golden/hyperkit/${c.name}.argv`, async (t) => {
    const { executable, argv } = buildVpnkitArgs(c.spec, {
      vpnkitBinary: c.vpnkitBinary,
      platform: 'darwin',
    });
    const actual = [executable, ...argv].join('\n') + '\n';
    const file = join(goldenDir, `${c.name}.argv`);
    await checkGolden(t, file, actual);
  });
}

t.test('vpnkit and hyperkit meet at the same sockets in the state directory', async (t) => {
  const p = hyperkitPaths(spaces.stateDir);
  const hk = buildHyperkitArgs(spaces, { vpnkitUuid: uuid, platform: 'darwin' }).argv;
  const vk = buildVpnkitArgs(spaces, { platform: 'darwin' }).argv;
  t.equal(vk[vk.indexOf('--ethernet') + 1], p.ethSocket);
  t.ok(
    hk.includes(`1:0,virtio-vpnkit,path=${p.ethSocket},uuid=${uuid}`),
    'hyperkit connects to the ethernet socket',
  );
  t.equal(vk[vk.indexOf('--vsock-path') + 1], p.connectSocket);
  t.ok(
    hk.includes(`3,virtio-sock,guest_cid=3,path=${spaces.stateDir}`),
    "hyperkit's connect socket is <state>/connect",
  );
  t.equal(p.connectSocket, `${spaces.stateDir}/connect`);
});

t.test(
  "the kernel command line follows the third comma, unquoted: hyperkit's arguments, the image's, the disk and vsock switches",
  async (t) => {
    const { argv } = buildHyperkitArgs(spaces, { vpnkitUuid: uuid, platform: 'darwin' });
    const f = argv[argv.indexOf('-f') + 1];
    t.equal(
      f,
      `kexec,${spaces.kernel},${spaces.initrd},earlyprintk=serial reboot=t console=ttyS0 printk.time=1 linuxkit.tags=a,b linuxkit.disk=/dev/vda linuxkit.ssh=vsock`,
    );
    t.notOk(f.includes('"'), 'no quote characters reach the kernel');
    t.equal(
      hyperkitCmdline({ cmdline: '  ', disk: undefined }),
      'earlyprintk=serial reboot=t linuxkit.ssh=vsock',
    );
  },
);

t.test("every hyperkit boot takes the guest's vsock way in, with a disk or without", async (t) => {
  for (const disk of [undefined, '/Users/ada/.local/state/linuxkit-nix/nix-disk.img']) {
    const words = hyperkitCmdline({ cmdline: base.cmdline, disk }).split(' ');
    t.equal(
      words.filter((w) => w === GUEST_VSOCK_SWITCH).length,
      1,
      `${GUEST_VSOCK_SWITCH} once (disk: ${disk})`,
    );
  }
});

t.test('guestAslr off reaches the kernel under hyperkit too (hvf: auto keeps it on)', async (t) => {
  t.equal(
    hyperkitCmdline({ cmdline: base.cmdline, disk: undefined, aslr: false }),
    `earlyprintk=serial reboot=t ${base.cmdline} linuxkit.ssh=vsock norandmaps`,
  );
  t.notOk(hyperkitCmdline({ cmdline: base.cmdline, disk: undefined, aslr: true }).includes('norandmaps'));
});

t.test('an empty initrd leaves the kexec initrd field empty', async (t) => {
  const { argv } = buildHyperkitArgs({ ...base, initrd: '' }, { vpnkitUuid: uuid, platform: 'darwin' });
  t.equal(
    argv[argv.indexOf('-f') + 1],
    `kexec,${base.kernel},,earlyprintk=serial reboot=t ${base.cmdline} linuxkit.ssh=vsock`,
  );
});

t.test('the UUID is written in lower case and must be a UUID', async (t) => {
  const { argv } = buildHyperkitArgs(base, { vpnkitUuid: uuid.toUpperCase(), platform: 'darwin' });
  t.ok(argv.some((a) => a.endsWith(`uuid=${uuid}`)));
  t.throws(() => buildHyperkitArgs(base, { vpnkitUuid: 'not-a-uuid', platform: 'darwin' }), {
    message: 'vpnkitUuid must be a UUID like 6e2f0a52-2a43-4f4b-9c0e-0b6f5d3c1a7e, got "not-a-uuid"',
  });
});

t.test('errors name the bad input', async (t) => {
  const bad = (over: Partial<VmSpec>) => () =>
    buildHyperkitArgs({ ...base, ...over }, { vpnkitUuid: uuid, platform: 'darwin' });
  t.throws(bad({ stateDir: '/Users/a,b/state' }), {
    message:
      'stateDir must not contain a comma (hyperkit splits its options on commas), got "/Users/a,b/state"',
  });
  t.throws(bad({ kernel: '/img/bz,Image' }), { message: /^kernel must not contain a comma/ });
  t.throws(bad({ disk: '/d/nix,disk.img' }), { message: /^disk must not contain a comma/ });
  t.throws(bad({ kernel: 'bzImage' }), { message: 'kernel must be an absolute path, got "bzImage"' });
  t.throws(bad({ arch: 'aarch64' }), { message: /^arch must be "x86_64" with hyperkit/ });
  t.throws(bad({ accel: 'tcg' }), { message: /^accel must be "hvf" with hyperkit/ });
  t.throws(bad({ cpus: 0 }), { message: 'cpus must be an integer >= 1, got 0' });
  t.throws(bad({ memoryMiB: 64 }), { message: 'memoryMiB must be an integer >= 128, got 64' });
  t.throws(bad({ sshPort: 70000 }), { message: 'sshPort must be an integer in 1..65535, got 70000' });
  t.throws(bad({ cmdline: 'console=ttyS0\nquiet' }), { message: /^cmdline must be a single-line string/ });
  t.throws(bad({ cmdline: 'init="/bin/sh -x"' }), { message: /^cmdline must not contain double quotes/ });
  const long = `/Users/${'x'.repeat(90)}`;
  t.throws(bad({ stateDir: long }), {
    message: `stateDir is too long for a Unix socket: ${long}/00000000.00000000 is 115 bytes, the limit on darwin is 103; choose a shorter stateDir`,
  });
  // 106 bytes: over the macOS limit, within Linux's.
  const mid = `/Users/${'y'.repeat(81)}`;
  t.throws(bad({ stateDir: mid }), {
    message: /00000000\.00000000 is 106 bytes, the limit on darwin is 103/,
  });
  t.doesNotThrow(() =>
    buildHyperkitArgs({ ...base, stateDir: mid }, { vpnkitUuid: uuid, platform: 'linux' }),
  );
  // hyperkit needs strlen(stateDir "/00000000.00000000") <= 103: 85 bytes of stateDir is the most.
  const atLimit = `/Users/${'z'.repeat(78)}`;
  t.doesNotThrow(() =>
    buildHyperkitArgs({ ...base, stateDir: atLimit }, { vpnkitUuid: uuid, platform: 'darwin' }),
  );
  t.throws(bad({ stateDir: `${atLimit}z` }), {
    message: /00000000\.00000000 is 104 bytes, the limit on darwin is 103/,
  });
});

t.test('the vsock connect header is 18 bytes of %08x.%08x\\n', async (t) => {
  t.equal(vsockConnectHeader(3, 22), '00000003.00000016\n');
  t.equal(vsockConnectHeader(3, 22).length, 18);
  t.equal(vsockConnectHeader(0xffffffff, 0xfffffffe), 'ffffffff.fffffffe\n');
  t.throws(() => vsockConnectHeader(3, -1), {
    message: 'vsock port must be an integer in 0..4294967295, got -1',
  });
  t.throws(() => vsockConnectHeader(2 ** 32, 22), {
    message: 'vsock cid must be an integer in 0..4294967295, got 4294967296',
  });
});
