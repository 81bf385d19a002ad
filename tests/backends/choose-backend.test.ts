// Backend and accelerator choice as a table over host facts built from stand-in probes, the way
// the daemon builds them from sysctl, /dev/kvm and PATH: Rosetta, kern.hv_support, missing tools.
import t from 'tap';
import { chooseBackend, type WantedBackend } from '../../daemon/backends/choose-backend.js';
import { hostFactsFrom, type HostFacts } from '../../daemon/host/host-facts.js';
import { allHostTools } from '../../daemon/backends/backend-list.js';

interface Machine {
  platform: NodeJS.Platform;
  processArch: string;
  sysctl?: Record<string, string>;
  kvm?: boolean;
  tools?: string[];
}

const ALL_TOOLS = ['qemu-system-x86_64', 'qemu-system-aarch64', 'hyperkit', 'vpnkit'];
const QEMU_ONLY = ['qemu-system-x86_64', 'qemu-system-aarch64'];

function facts(m: Machine): HostFacts {
  return hostFactsFrom(
    {
      platform: m.platform,
      processArch: m.processArch,
      sysctl: (name) => m.sysctl?.[name] ?? null,
      kvmUsable: () => m.kvm ?? false,
      which: (bin) => ((m.tools ?? ALL_TOOLS).includes(bin) ? `/usr/local/bin/${bin}` : null),
    },
    allHostTools(),
  );
}

// sysctl as the real Macs answer it: Intel Macs have no hw.optional.arm64.
const intelMac: Machine = {
  platform: 'darwin',
  processArch: 'x64',
  sysctl: { 'sysctl.proc_translated': '0', 'kern.hv_support': '1' },
};
const appleSilicon: Machine = {
  platform: 'darwin',
  processArch: 'arm64',
  sysctl: { 'sysctl.proc_translated': '0', 'hw.optional.arm64': '1', 'kern.hv_support': '1' },
  tools: QEMU_ONLY,
};
// An x86_64 Node (old Homebrew prefix, nvm) on Apple Silicon: process.arch says x64.
const rosetta: Machine = {
  ...appleSilicon,
  processArch: 'x64',
  sysctl: { ...appleSilicon.sysctl, 'sysctl.proc_translated': '1' },
  tools: ALL_TOOLS,
};
const appleSiliconVm: Machine = {
  ...appleSilicon,
  sysctl: { ...appleSilicon.sysctl, 'kern.hv_support': '0' },
};
const intelMacVm: Machine = { ...intelMac, sysctl: { ...intelMac.sysctl, 'kern.hv_support': '0' } };
const linux: Machine = { platform: 'linux', processArch: 'x64', kvm: true, tools: QEMU_ONLY };
const linuxNoKvm: Machine = { ...linux, kvm: false };
const auto = { backend: 'auto', accel: 'auto' } as const;

t.test('host facts read the real machine, not the Node binary', async (t) => {
  const rows: Array<[string, Machine, Partial<HostFacts>]> = [
    ['Intel Mac', intelMac, { machineArch: 'x64', rosetta: false, hvSupport: true }],
    ['Apple Silicon', appleSilicon, { machineArch: 'arm64', rosetta: false, hvSupport: true }],
    ['x64 Node under Rosetta', rosetta, { machineArch: 'arm64', processArch: 'x64', rosetta: true }],
    ['macOS VM without nested virtualisation', appleSiliconVm, { hvSupport: false }],
    [
      'old Intel macOS without proc_translated',
      { platform: 'darwin', processArch: 'x64' },
      { machineArch: 'x64', rosetta: false, hvSupport: null },
    ],
    ['Linux with /dev/kvm', linux, { machineArch: 'x64', hvSupport: null, kvmUsable: true }],
    [
      'Linux reads no sysctl',
      { ...linux, sysctl: { 'hw.optional.arm64': '1' } },
      { machineArch: 'x64', rosetta: false },
    ],
  ];
  for (const [name, m, expected] of rows) t.match(facts(m), expected, name);
  t.same(facts(linux).tools, {
    'qemu-system-x86_64': '/usr/local/bin/qemu-system-x86_64',
    'qemu-system-aarch64': '/usr/local/bin/qemu-system-aarch64',
    hyperkit: null,
    vpnkit: null,
  });
});

const rows: Array<[string, WantedBackend, Machine, string, string, RegExp]> = [
  [
    'auto on an Intel Mac with hyperkit picks hyperkit',
    { ...auto, arch: 'x86_64' },
    intelMac,
    'hyperkit',
    'hvf',
    /^auto on this Intel Mac: hyperkit/,
  ],
  [
    'auto on an Intel Mac without hyperkit picks qemu with hvf',
    { ...auto, arch: 'x86_64' },
    { ...intelMac, tools: QEMU_ONLY },
    'qemu',
    'hvf',
    /hyperkit: hyperkit or vpnkit not on PATH/,
  ],
  [
    'auto on Apple Silicon picks qemu with hvf for an aarch64 guest',
    { ...auto, arch: 'aarch64' },
    appleSilicon,
    'qemu',
    'hvf',
    /hyperkit runs only on Intel Macs; this is an Apple Silicon Mac/,
  ],
  [
    'auto on Apple Silicon emulates an x86_64 guest with tcg',
    { ...auto, arch: 'x86_64' },
    appleSilicon,
    'qemu',
    'tcg',
    /accel tcg, emulated: hvf is not usable: hvf cannot run an x86_64 guest/,
  ],
  [
    'a Rosetta Node on Apple Silicon takes the arm64 path: qemu, hvf, aarch64',
    { ...auto, arch: 'aarch64' },
    rosetta,
    'qemu',
    'hvf',
    /Apple Silicon Mac \(this Node runs under Rosetta\)/,
  ],
  [
    'a Rosetta Node never picks hyperkit, even with it on PATH',
    { ...auto, arch: 'x86_64' },
    rosetta,
    'qemu',
    'tcg',
    /hyperkit runs only on Intel Macs/,
  ],
  [
    'no Hypervisor.framework (macOS VM): tcg with the reason',
    { ...auto, arch: 'aarch64' },
    appleSiliconVm,
    'qemu',
    'tcg',
    /kern\.hv_support is 0/,
  ],
  [
    'no Hypervisor.framework on an Intel Mac: hyperkit is passed over for qemu/tcg',
    { ...auto, arch: 'x86_64' },
    intelMacVm,
    'qemu',
    'tcg',
    /hyperkit has no usable accelerator here: hvf: this Mac has no Hypervisor\.framework support/,
  ],
  [
    'auto on Linux with /dev/kvm picks kvm',
    { ...auto, arch: 'x86_64' },
    linux,
    'qemu',
    'kvm',
    /accel kvm, hardware/,
  ],
  [
    'auto on Linux without /dev/kvm picks tcg',
    { ...auto, arch: 'x86_64' },
    linuxNoKvm,
    'qemu',
    'tcg',
    /kvm is not usable: \/dev\/kvm is missing or not writable/,
  ],
  [
    'an explicit tcg is kept even where kvm exists',
    { backend: 'qemu', accel: 'tcg', arch: 'x86_64' },
    linux,
    'qemu',
    'tcg',
    /accel tcg in the config/,
  ],
  [
    'qemu named with no qemu on PATH is still chosen: its start says what is missing',
    { backend: 'qemu', accel: 'auto', arch: 'x86_64' },
    { ...linux, tools: [] },
    'qemu',
    'kvm',
    /backend qemu in the config/,
  ],
];
for (const [name, wanted, machine, backend, accel, reason] of rows) {
  t.test(name, async (t) => {
    const got = chooseBackend(wanted, facts(machine));
    t.equal(got.backend, backend);
    t.equal(got.accel, accel);
    t.match(got.reason, reason);
  });
}

t.test('impossible choices are refused with what would work', async (t) => {
  const refuse = (wanted: WantedBackend, m: Machine, message: RegExp) =>
    t.throws(() => chooseBackend(wanted, facts(m)), { message }, message.source);
  refuse(
    { backend: 'hyperkit', accel: 'auto', arch: 'x86_64' },
    linux,
    /^backend hyperkit runs only on Intel Macs; this is a linux\/x64 host/,
  );
  refuse({ backend: 'hyperkit', accel: 'auto', arch: 'x86_64' }, appleSilicon, /Intel Macs/);
  refuse(
    { backend: 'hyperkit', accel: 'auto', arch: 'x86_64' },
    rosetta,
    /runs only on Intel Macs; this is an Apple Silicon Mac \(this Node runs under Rosetta\)/,
  );
  refuse({ backend: 'hyperkit', accel: 'auto', arch: 'aarch64' }, intelMac, /boots only x86_64 guests/);
  refuse(
    { backend: 'hyperkit', accel: 'kvm', arch: 'x86_64' },
    intelMac,
    /accel kvm is not available with hyperkit \(it uses hvf\): use auto/,
  );
  refuse({ backend: 'hyperkit', accel: 'auto', arch: 'x86_64' }, intelMacVm, /kern\.hv_support is 0/);
  refuse(
    { backend: 'qemu', accel: 'hvf', arch: 'x86_64' },
    linux,
    /^accel hvf cannot be used: hvf needs macOS; this host is linux; use kvm, tcg or auto$/,
  );
  refuse(
    { backend: 'qemu', accel: 'hvf', arch: 'aarch64' },
    appleSiliconVm,
    /kern\.hv_support is 0.*; use tcg or auto$/,
  );
  refuse({ backend: 'qemu', accel: 'kvm', arch: 'x86_64' }, linuxNoKvm, /\/dev\/kvm is missing/);
  refuse(
    { backend: 'qemu', accel: 'kvm', arch: 'aarch64' },
    linux,
    /cannot run an aarch64 guest.*use tcg or auto$/,
  );
  refuse(
    { backend: 'vfkit', accel: 'auto', arch: 'aarch64' },
    appleSilicon,
    /^backend vfkit is not known; use auto, qemu or hyperkit$/,
  );
});
