// The QEMU command line is pinned by golden files (one argument per line, argv[0] first).
// Regenerate with UPDATE_GOLDEN=1 (refused when CI is set) after an intended change, and review the diff.
import t from 'tap';
import { join } from 'node:path';
import type { VmSpec } from '../../../daemon/backend.js';
import {
  buildQemuArgs,
  escapeQemuOptionValue,
  qemuCpuModel,
  qemuPaths,
} from '../../../daemon/backends/qemu/args.js';
import { unixSocketPathLimit } from '../../../daemon/backends/common/spec-checks.js';
import { repoRoot } from '../../helpers/env.js';
import { checkGolden } from '../../helpers/golden.js';

const goldenDir = join(repoRoot, 'tests', 'golden', 'qemu');

const base: VmSpec = {
  arch: 'x86_64',
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 1024,
  kernel: '/var/lib/linuxkit/image/abc/vmlinux',
  initrd: '/var/lib/linuxkit/image/abc/initrd.img',
  cmdline: 'console=ttyS0 quiet',
  sshPort: 31022,
  stateDir: '/var/lib/linuxkit',
  consoleLog: '/var/lib/linuxkit/console/boot-1.log',
  guestFiles: {
    'linuxkit/ssh_host_ed25519_key': '/var/lib/linuxkit/keys/ssh_host_ed25519_key',
    'linuxkit/authorized_keys': '/var/lib/linuxkit/keys/client.pub',
  },
};

// The daemon's spec under tcg: the guest without address-space randomization (vm-spec.ts).
const tcg: VmSpec = { ...base, aslr: false };

const cases: Array<{ name: string; spec: VmSpec; qemuBinary?: string; firmware?: string }> = [
  { name: 'x86_64-tcg', spec: tcg },
  // What the backend runs under tcg when the QEMU ships qboot (firmware.ts).
  { name: 'x86_64-tcg-qboot', spec: tcg, firmware: '/usr/share/qemu/qboot.rom' },
  { name: 'x86_64-kvm', spec: { ...base, accel: 'kvm' } },
  {
    name: 'x86_64-hvf',
    spec: { ...base, accel: 'hvf', cpus: 4, memoryMiB: 4096 },
    qemuBinary: '/opt/homebrew/bin/qemu-system-x86_64',
  },
  { name: 'aarch64-tcg', spec: { ...tcg, arch: 'aarch64', cmdline: 'console=ttyAMA0' } },
  { name: 'aarch64-hvf', spec: { ...base, arch: 'aarch64', accel: 'hvf', cmdline: 'console=ttyAMA0' } },
  // More than the 3 GiB that `virt,highmem=off` allowed: nothing in the argv caps it any more.
  {
    name: 'aarch64-hvf-8g',
    spec: { ...base, arch: 'aarch64', accel: 'hvf', memoryMiB: 8192, cmdline: 'console=ttyAMA0' },
  },
  {
    name: 'x86_64-spaces-commas',
    spec: {
      ...base,
      kernel: '/Users/a b,c/image/vmlinux',
      initrd: '/Users/a b,c/image/initrd,1.img',
      stateDir: '/Users/a b,c/state',
      consoleLog: '/Users/a b,c/state/console,1.log',
      guestFiles: { 'linuxkit/authorized_keys': '/Users/a b,c/keys/client,1.pub' },
      disk: '/Users/a b,c/state/nix,disk.img',
    },
  },
  { name: 'x86_64-disk', spec: { ...base, disk: '/var/lib/linuxkit/nix-disk.img' } },
];

for (const c of cases) {
  t.test(`argv for ${c.name} matches tests/golden/qemu/${c.name}.argv`, async (t) => {
    const { executable, argv } = buildQemuArgs(c.spec, {
      qemuBinary: c.qemuBinary,
      platform: 'linux',
      firmware: c.firmware,
    });
    const actual = [executable, ...argv].join('\n') + '\n';
    const file = join(goldenDir, `${c.name}.argv`);
    await checkGolden(t, file, actual);
  });
}

t.test('-cpu per host: what each accelerator and guest architecture gets', async (t) => {
  const table: Array<{ host: string; arch: VmSpec['arch']; accel: VmSpec['accel']; cpu: string }> = [
    // Apple Silicon: QEMU >= 9.2.3 (required, version.ts) hides the M4's SME itself.
    { host: 'darwin arm64, hvf', arch: 'aarch64', accel: 'hvf', cpu: 'host' },
    // Intel Mac: lima's flags (lima #1485): no 1 GiB pages, no AVX-512 through hvf.
    { host: 'darwin x86_64, hvf', arch: 'x86_64', accel: 'hvf', cpu: 'host,-pdpe1gb,-avx512vl' },
    { host: 'linux x86_64, kvm', arch: 'x86_64', accel: 'kvm', cpu: 'host' },
    { host: 'linux arm64, kvm', arch: 'aarch64', accel: 'kvm', cpu: 'host' },
    { host: 'any, tcg, x86_64 guest', arch: 'x86_64', accel: 'tcg', cpu: 'max' },
    { host: 'any, tcg, aarch64 guest', arch: 'aarch64', accel: 'tcg', cpu: 'max,pauth-impdef=on' },
  ];
  for (const row of table) {
    t.equal(qemuCpuModel(row.arch, row.accel), row.cpu, row.host);
    const { argv } = buildQemuArgs({ ...base, arch: row.arch, accel: row.accel }, { platform: 'linux' });
    t.equal(argv[argv.indexOf('-cpu') + 1], row.cpu, `${row.host}: the argv carries it`);
  }
});

t.test(
  'aarch64 uses plain virt on every accelerator: highmem=off would cap the guest at 3 GiB',
  async (t) => {
    for (const accel of ['hvf', 'kvm', 'tcg'] as const) {
      const { argv } = buildQemuArgs(
        { ...base, arch: 'aarch64', accel, memoryMiB: 16384 },
        { platform: 'linux' },
      );
      t.equal(argv[argv.indexOf('-machine') + 1], 'virt', accel);
      t.notOk(argv.join(' ').includes('highmem'), `${accel}: no highmem option anywhere`);
    }
  },
);

t.test('SSH is forwarded from 127.0.0.1 only, never from every interface', async (t) => {
  const { argv } = buildQemuArgs(base);
  const netdev = argv[argv.indexOf('-netdev') + 1];
  t.equal(netdev, 'user,id=n0,hostfwd=tcp:127.0.0.1:31022-:22');
});

t.test('guest files are passed sorted by name, whatever the object order', async (t) => {
  const { argv } = buildQemuArgs(base);
  const fwcfg = argv.filter((_, i) => argv[i - 1] === '-fw_cfg');
  t.same(fwcfg, [
    'name=opt/linuxkit/authorized_keys,file=/var/lib/linuxkit/keys/client.pub',
    'name=opt/linuxkit/ssh_host_ed25519_key,file=/var/lib/linuxkit/keys/ssh_host_ed25519_key',
  ]);
});

t.test('a disk adds a virtio drive and tells the guest where it is', async (t) => {
  const { argv } = buildQemuArgs({ ...base, disk: '/d/nix.img' });
  t.equal(argv[argv.indexOf('-append') + 1], 'console=ttyS0 quiet linuxkit.disk=/dev/vda');
  t.equal(argv[argv.indexOf('-drive') + 1], 'file=/d/nix.img,if=virtio,format=raw');
});

t.test('an empty initrd means booting the kernel alone', async (t) => {
  const { argv } = buildQemuArgs({ ...base, initrd: '' });
  t.notOk(argv.includes('-initrd'));
});

t.test(
  'a firmware file is -bios for an x86_64 guest, before its kernel; aarch64 boots without',
  async (t) => {
    const firmware = '/opt/homebrew/Cellar/qemu/9.2.3/share/qemu/qboot.rom';
    const { argv } = buildQemuArgs(base, { firmware });
    t.equal(argv[argv.indexOf('-bios') + 1], firmware);
    t.ok(argv.indexOf('-bios') < argv.indexOf('-kernel'), 'the firmware loads the kernel');
    t.notOk(buildQemuArgs(base, { firmware: null }).argv.includes('-bios'), "null: QEMU's default");
    const arm = buildQemuArgs({ ...base, arch: 'aarch64', cmdline: 'console=ttyAMA0' }, { firmware });
    t.notOk(arm.argv.includes('-bios'), 'the virt machine loads the kernel itself');
    t.throws(() => buildQemuArgs(base, { firmware: 'qboot.rom' }), {
      message: 'firmware must be an absolute path, got "qboot.rom"',
    });
  },
);

t.test('commas in option values are doubled, as QEMU requires', async (t) => {
  t.equal(escapeQemuOptionValue('/a,b,,c'), '/a,,b,,,,c');
  t.equal(escapeQemuOptionValue('/plain path'), '/plain path');
});

t.test('derived paths live in the state directory', async (t) => {
  t.same(qemuPaths('/s'), {
    qmpSocket: '/s/qmp.sock',
    pidFile: '/s/qemu.pid',
    stderrLog: '/s/qemu.stderr.log',
  });
});

t.test('invalid specs are refused with an error naming the field', async (t) => {
  const bad: Array<[Partial<VmSpec>, RegExp]> = [
    [{ sshPort: 0 }, /sshPort must be an integer in 1\.\.65535, got 0/],
    [{ sshPort: 65536 }, /sshPort .* got 65536/],
    [{ sshPort: 22.5 }, /sshPort/],
    [{ cpus: 0 }, /cpus must be an integer >= 1, got 0/],
    [{ memoryMiB: 64 }, /memoryMiB must be an integer >= 128, got 64/],
    [{ kernel: 'vmlinux' }, /kernel must be an absolute path, got "vmlinux"/],
    [{ initrd: './initrd' }, /initrd must be an absolute path/],
    [{ stateDir: 'state' }, /stateDir must be an absolute path/],
    [{ consoleLog: 'console.log' }, /consoleLog must be an absolute path/],
    [{ disk: 'disk.img' }, /disk must be an absolute path/],
    [{ guestFiles: { 'bad name': '/k' } }, /guestFiles name "bad name" must be/],
    [{ guestFiles: { key: 'relative' } }, /guestFiles\["key"\] must be an absolute path/],
    [{ guestFiles: { ['a'.repeat(52)]: '/k' } }, /guestFiles name "a{52}" must be 1\.\.51 characters/],
    [{ arch: 'riscv64' as never }, /arch must be "x86_64" or "aarch64", got "riscv64"/],
    [{ accel: 'whpx' as never }, /accel must be "hvf", "kvm" or "tcg", got "whpx"/],
    [{ cmdline: 'a\nb' }, /cmdline must be a single-line string/],
  ];
  for (const [patch, message] of bad) {
    t.throws(() => buildQemuArgs({ ...base, ...patch }), { message }, JSON.stringify(patch));
  }
});

t.test('a QMP socket path over the platform limit fails naming stateDir and the limit', async (t) => {
  t.equal(unixSocketPathLimit('linux'), 107);
  t.equal(unixSocketPathLimit('darwin'), 103);
  // "/" + name + "/qmp.sock" (9 bytes): exactly at the limit is fine, one more byte is not.
  const dirOf = (len: number) => '/' + 'd'.repeat(len - 1 - 9);
  t.doesNotThrow(() => buildQemuArgs({ ...base, stateDir: dirOf(107) }, { platform: 'linux' }));
  t.throws(() => buildQemuArgs({ ...base, stateDir: dirOf(108) }, { platform: 'linux' }), {
    message: /stateDir is too long for a Unix socket: .*qmp\.sock is 108 bytes, the limit on linux is 107/,
  });
  t.doesNotThrow(() => buildQemuArgs({ ...base, stateDir: dirOf(103) }, { platform: 'darwin' }));
  t.throws(() => buildQemuArgs({ ...base, stateDir: dirOf(104) }, { platform: 'darwin' }), {
    message: /the limit on darwin is 103/,
  });
  // Bytes, not characters: multi-byte names count fully.
  t.throws(() => buildQemuArgs({ ...base, stateDir: '/' + 'é'.repeat(49) }, { platform: 'linux' }), {
    message: /is 108 bytes/,
  });
});
