// Which QEMU the backend accepts, as tables: the `--version` parser, the minimum per guest
// architecture and accelerator, and the QEMU failures whose cause is known.
import t from 'tap';
import { explainQemuFailure } from '../../../daemon/backends/qemu/known-failures.js';
import {
  assertSupportedQemu,
  parseQemuVersion,
  QemuTooOldError,
  requiredQemuVersion,
} from '../../../daemon/backends/qemu/version.js';

t.test('parseQemuVersion reads what each distribution prints', async (t) => {
  const table: Array<[string, ReturnType<typeof parseQemuVersion>]> = [
    [
      'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard',
      { major: 7, minor: 2, micro: 22 },
    ],
    [
      'QEMU emulator version 9.2.3\nCopyright (c) 2003-2024 Fabrice Bellard and the QEMU Project developers',
      { major: 9, minor: 2, micro: 3 },
    ],
    ['QEMU emulator version 11.0.1\n', { major: 11, minor: 0, micro: 1 }],
    ['QEMU emulator version 6.2.0 (Debian 1:6.2+dfsg-2ubuntu6.22)\n', { major: 6, minor: 2, micro: 0 }],
    // A release candidate of 10.0 calls itself 9.2.90.
    ['QEMU emulator version 9.2.90 (v10.0.0-rc0)\n', { major: 9, minor: 2, micro: 90 }],
    ['QEMU emulator version 8.1\n', { major: 8, minor: 1, micro: 0 }],
    ['qemu-system-aarch64: unknown option\n', null],
    ['', null],
  ];
  for (const [output, want] of table)
    t.same(parseQemuVersion(output), want, JSON.stringify(output.split('\n')[0]));
});

t.test('the minimum QEMU per guest architecture and accelerator', async (t) => {
  const table: Array<{
    host: string;
    arch: 'x86_64' | 'aarch64';
    accel: 'hvf' | 'kvm' | 'tcg';
    minimum: string;
  }> = [
    { host: 'darwin arm64, hvf (SME on M4: QEMU #2665)', arch: 'aarch64', accel: 'hvf', minimum: '9.2.3' },
    { host: 'darwin x86_64, hvf', arch: 'x86_64', accel: 'hvf', minimum: '7.0.0' },
    { host: 'linux, kvm', arch: 'x86_64', accel: 'kvm', minimum: '7.0.0' },
    { host: 'linux arm64, kvm', arch: 'aarch64', accel: 'kvm', minimum: '7.0.0' },
    { host: 'any, tcg x86_64', arch: 'x86_64', accel: 'tcg', minimum: '7.0.0' },
    { host: 'any, tcg aarch64', arch: 'aarch64', accel: 'tcg', minimum: '7.0.0' },
  ];
  for (const row of table) {
    const { minimum } = requiredQemuVersion(row);
    t.equal(`${minimum.major}.${minimum.minor}.${minimum.micro}`, row.minimum, row.host);
  }
});

t.test(
  'assertSupportedQemu: too old is refused with the version found, the one needed and why',
  async (t) => {
    const hvfArm = { arch: 'aarch64', accel: 'hvf' } as const;
    const v = (major: number, minor: number, micro: number) => ({ major, minor, micro });
    t.doesNotThrow(() => assertSupportedQemu(v(9, 2, 3), '/opt/homebrew/bin/qemu-system-aarch64', hvfArm));
    t.doesNotThrow(() => assertSupportedQemu(v(10, 0, 0), '/opt/homebrew/bin/qemu-system-aarch64', hvfArm));
    t.doesNotThrow(() =>
      assertSupportedQemu(v(7, 0, 0), '/usr/bin/qemu-system-x86_64', { arch: 'x86_64', accel: 'kvm' }),
    );
    t.throws(() => assertSupportedQemu(v(9, 2, 2), '/opt/homebrew/bin/qemu-system-aarch64', hvfArm), {
      name: 'QemuTooOldError',
      permanent: true,
      message:
        /^\/opt\/homebrew\/bin\/qemu-system-aarch64 is QEMU 9\.2\.2, too old for an aarch64 guest with hvf: QEMU 9\.2\.3 or later is needed \(.*#2665.*highmem=off.*3 GiB\); install a newer QEMU/,
    });
    const err = (() => {
      try {
        assertSupportedQemu(v(6, 2, 0), '/usr/bin/qemu-system-x86_64', { arch: 'x86_64', accel: 'tcg' });
      } catch (e) {
        return e;
      }
    })();
    t.ok(err instanceof QemuTooOldError);
    t.match(
      (err as Error).message,
      /is QEMU 6\.2\.0, too old for an x86_64 guest with tcg: QEMU 7\.0\.0 or later is needed/,
    );
  },
);

t.test('explainQemuFailure names the causes read in upstream threads', async (t) => {
  // NixOS/nixpkgs#532038, as QEMU 11.0.1 prints it before SIGABRT.
  const nixpkgs =
    'ERROR:../target/arm/hvf/sysreg.c.inc:149:hvf_arch_init_vcpu: assertion failed: ' +
    '(HV_SYS_REG_SMCR_EL1 == KVMID_TO_HVF(KVMID_AA64_SYS_REG64(3, 0, 1, 2, 6)))\nBail out! ERROR:...';
  t.match(explainQemuFailure(nixpkgs), /built against a macOS SDK older than 15 .*#536526.*#532038/);
  // lima #3226 / QEMU #2665 (9.2.1), and the message of the fix's commit (9.2.0).
  t.match(
    explainQemuFailure("qemu-system-aarch64: Property 'host-arm-cpu.sme' not found\n"),
    /Apple M4 \(SME, QEMU issue #2665/,
  );
  t.match(explainQemuFailure('qemu-aarch64-softmmu: cannot disable sme4224\n'), /#2665/);
  t.equal(
    explainQemuFailure("qemu-system-x86_64: Could not set up host forwarding rule 'tcp:127.0.0.1:22-:22'"),
    null,
  );
  t.equal(explainQemuFailure(undefined), null);
});
