// Why a VM ended, in the words the daemon shows, from what the backend observed.
import t from 'tap';
import { describeVmExit, type ExitObservation } from '../../../daemon/backends/qemu/exit.js';

const at = '2025-11-26T09:00:00.000Z';

const table: Array<[string, ExitObservation, { reason: string; reboot?: boolean }]> = [
  [
    'ACPI power-off',
    { code: 0, signal: null, shutdownReason: 'guest-shutdown' },
    { reason: 'guest powered off' },
  ],
  [
    'guest reboot',
    { code: 0, signal: null, shutdownReason: 'guest-reset' },
    { reason: 'guest rebooted', reboot: true },
  ],
  [
    'guest panic via SHUTDOWN',
    { code: 0, signal: null, shutdownReason: 'guest-panic' },
    { reason: 'guest kernel panicked' },
  ],
  [
    'guest panic via GUEST_PANICKED',
    { code: 0, signal: null, panicked: true },
    { reason: 'guest kernel panicked' },
  ],
  ['QMP quit', { code: 0, signal: null, shutdownReason: 'host-qmp-quit' }, { reason: 'stopped by the host' }],
  [
    'SIGTERM handled by QEMU',
    { code: 0, signal: null, shutdownReason: 'host-signal' },
    { reason: 'stopped by the host' },
  ],
  [
    'an unusual reason',
    { code: 0, signal: null, shutdownReason: 'host-error' },
    { reason: 'shut down (host-error)' },
  ],
  ['SIGKILL', { code: null, signal: 'SIGKILL' }, { reason: 'killed by SIGKILL' }],
  [
    'SIGABRT, unknown cause',
    { code: null, signal: 'SIGABRT', stderrTail: 'qemu: something odd\n' },
    { reason: 'killed by SIGABRT' },
  ],
  [
    "SIGABRT from nixpkgs' QEMU 11.0 under hvf (NixOS/nixpkgs#532038)",
    {
      code: null,
      signal: 'SIGABRT',
      stderrTail:
        'ERROR:../target/arm/hvf/sysreg.c.inc:149:hvf_arch_init_vcpu: assertion failed: (HV_SYS_REG_SMCR_EL1 == KVMID_TO_HVF(...))\n',
    },
    {
      reason:
        'killed by SIGABRT: this QEMU build aborts under hvf on macOS 15.2 and later because it was built against a ' +
        "macOS SDK older than 15 (nixpkgs' qemu 11.0 before NixOS/nixpkgs#536526, see #532038); use a QEMU built " +
        'with the macOS 15 SDK (a current nixpkgs, or Homebrew)',
    },
  ],
  [
    'SIGKILL after a powerdown request',
    { code: null, signal: 'SIGKILL', shutdownReason: 'guest-shutdown' },
    { reason: 'killed by SIGKILL' },
  ],
  [
    'bad option',
    {
      code: 1,
      signal: null,
      stderrTail: 'qemu-system-x86_64: -netdev user: Could not set up host forwarding rule\n\n',
    },
    { reason: 'exited with code 1: qemu-system-x86_64: -netdev user: Could not set up host forwarding rule' },
  ],
  ['exit 1 without output', { code: 1, signal: null }, { reason: 'exited with code 1' }],
  [
    'clean exit without event',
    { code: 0, signal: null, stderrTail: 'noise' },
    { reason: 'exited with code 0' },
  ],
  [
    'adopted, no event seen',
    { code: null, signal: null, adopted: true },
    { reason: 'exited (adopted VM, exit code unknown)' },
  ],
  [
    'adopted, powered off',
    { code: null, signal: null, adopted: true, shutdownReason: 'guest-shutdown' },
    { reason: 'guest powered off' },
  ],
];

for (const [name, observed, expected] of table) {
  t.test(`${name} → "${expected.reason}"`, async (t) => {
    const exit = describeVmExit(observed, at);
    t.same(exit, { code: observed.code, signal: observed.signal, at, ...expected });
    t.equal('reboot' in exit, 'reboot' in expected, 'reboot is set only for a guest reboot');
  });
}
