// How a hyperkit VM's end is reported: hyperkit's exit codes (vmexit_suspend in hyperkit.c),
// signals, vpnkit going first, and an adopted VM whose status only its console can tell.
import t from 'tap';
import {
  describeHyperkitExit,
  type HyperkitExitObservation,
} from '../../../daemon/backends/hyperkit/exit.js';

const at = '2025-01-01T00:00:00.000Z';
const rows: Array<[string, HyperkitExitObservation, { reason: string; reboot?: true }]> = [
  ['exit 0 is a guest power-off', { code: 0, signal: null }, { reason: 'guest powered off' }],
  [
    'exit 2 is a guest reboot, to be restarted at once',
    { code: 2, signal: null },
    { reason: 'guest rebooted', reboot: true },
  ],
  [
    'exit 3 is a triple fault',
    { code: 3, signal: null },
    { reason: 'guest triple fault (the guest CPU hit a fault it could not handle)' },
  ],
  [
    'exit 100 says what hyperkit printed',
    {
      code: 100,
      signal: null,
      stderrTail: 'COM1 connected to /dev/ttys003\nvmexit_suspend: invalid reason 7\n',
    },
    { reason: 'hyperkit failed (exit code 100): vmexit_suspend: invalid reason 7' },
  ],
  ['exit 100 without output', { code: 100, signal: null }, { reason: 'hyperkit failed (exit code 100)' }],
  [
    'exit 1 at start carries the error',
    { code: 1, signal: null, stderrTail: 'Failed to set up pidfile\npidfile error -1\n' },
    { reason: 'exited with code 1: pidfile error -1' },
  ],
  ['SIGKILL', { code: null, signal: 'SIGKILL', stderrTail: 'anything' }, { reason: 'killed by SIGKILL' }],
  [
    'SIGTERM before the guest enabled ACPI',
    { code: null, signal: 'SIGTERM' },
    { reason: 'killed by SIGTERM' },
  ],
  [
    'SIGABRT says why hyperkit gave up',
    { code: null, signal: 'SIGABRT', stderrTail: 'kexec: failed to load kernel /x/bzImage\n' },
    { reason: 'killed by SIGABRT: kexec: failed to load kernel /x/bzImage' },
  ],
  [
    'vpnkit dying first is the cause, whatever hyperkit then did',
    { code: 0, signal: null, vpnkitFirst: { code: null, signal: 'SIGKILL' } },
    { reason: 'vpnkit was killed by SIGKILL; the VM went down with it (hyperkit exited with code 0)' },
  ],
  [
    'a VM that went down with vpnkit is never a reboot',
    { code: 2, signal: null, vpnkitFirst: { code: 1, signal: null } },
    { reason: 'vpnkit exited with code 1; the VM went down with it (hyperkit exited with code 2)' },
  ],
  [
    'an adopted VM with no clue',
    { code: null, signal: null, adopted: true, consoleTail: ['[ 1.0] hello'] },
    { reason: 'exited (adopted VM, exit code unknown)' },
  ],
  [
    'an adopted VM whose console says it rebooted',
    { code: null, signal: null, adopted: true, consoleTail: ['[ 9.1] reboot: Restarting system'] },
    { reason: 'guest rebooted (adopted VM; seen on its console)', reboot: true },
  ],
  [
    'an adopted VM whose console says it powered off',
    { code: null, signal: null, adopted: true, consoleTail: ['[ 9.1] reboot: Power down', ''] },
    { reason: 'guest powered off (adopted VM; seen on its console)' },
  ],
];

for (const [name, o, want] of rows) {
  t.test(name, async (t) => {
    const exit = describeHyperkitExit(o, at);
    t.same(exit, { code: o.code, signal: o.signal, at, ...want });
    if (!want.reboot) t.notOk('reboot' in exit, 'not a reboot: the supervisor backs off');
  });
}
