// The machine's facts, from stand-in probes answering as macOS and Linux do, through the config's
// defaults and doctor (backend choice has its own table in tests/backends/choose-backend.test.ts).
import t from 'tap';
import { backendFacts } from '../../client/install/doctor-facts.js';
import { allHostTools } from '../../daemon/backends/backend-list.js';
import { currentHost, defaultConfig, hostInfoFrom } from '../../daemon/config/load.js';
import { currentHostFacts, hostFactsFrom, type HostProbes } from '../../daemon/host/host-facts.js';

const mac = (
  processArch: string,
  sysctl: Record<string, string>,
  tools = ['qemu-system-aarch64', 'qemu-system-x86_64'],
): HostProbes => ({
  platform: 'darwin',
  processArch,
  sysctl: (name) => sysctl[name] ?? null,
  kvmUsable: () => false,
  which: (bin) => (tools.includes(bin) ? `/opt/homebrew/bin/${bin}` : null),
});
const appleSilicon = { 'sysctl.proc_translated': '0', 'hw.optional.arm64': '1', 'kern.hv_support': '1' };
const machines: Array<[string, HostProbes, string]> = [
  ['an arm64 Node on Apple Silicon', mac('arm64', appleSilicon), 'aarch64'],
  [
    'an x64 Node under Rosetta on Apple Silicon',
    mac('x64', { ...appleSilicon, 'sysctl.proc_translated': '1' }),
    'aarch64',
  ],
  ['an Intel Mac', mac('x64', { 'sysctl.proc_translated': '0', 'kern.hv_support': '1' }), 'x86_64'],
  ['an Intel Mac before macOS 11 (no proc_translated)', mac('x64', { 'kern.hv_support': '1' }), 'x86_64'],
  ['Linux arm64', { ...mac('arm64', {}), platform: 'linux', kvmUsable: () => true }, 'x86_64'],
];

t.test('config defaults follow the machine, not the Node binary', async (t) => {
  for (const [name, probes, arch] of machines) {
    const config = defaultConfig(hostInfoFrom(hostFactsFrom(probes)));
    t.equal(config.arch, arch, name);
    t.same(config.systems, [`${arch}-linux`], `${name}: systems follow`);
  }
});

t.test("this machine's facts are read once and agree with currentHost()", async (t) => {
  const facts = currentHostFacts(allHostTools());
  t.equal(facts.platform, process.platform);
  t.same(currentHost(), { platform: facts.platform, arch: facts.machineArch });
  t.same(Object.keys(facts.tools).sort(), [...allHostTools()].sort());
  if (process.platform === 'linux')
    t.match(facts, { rosetta: false, hvSupport: null, machineArch: process.arch });
});

t.test("doctor's backend check under Rosetta and without Hypervisor.framework", async (t) => {
  const rosetta = hostFactsFrom(
    mac('x64', { ...appleSilicon, 'sysctl.proc_translated': '1' }),
    allHostTools(),
  );
  const config = defaultConfig(hostInfoFrom(rosetta));
  t.match(backendFacts(config, rosetta), { ok: true, backend: 'qemu', accel: 'hvf', missingTools: [] });
  t.match(backendFacts({ backend: 'hyperkit', accel: 'auto', arch: 'x86_64' }, rosetta), {
    ok: false,
    message:
      /hyperkit runs only on Intel Macs; this is an Apple Silicon Mac \(this Node runs under Rosetta\)/,
  });

  const noHv = hostFactsFrom(mac('arm64', { ...appleSilicon, 'kern.hv_support': '0' }), allHostTools());
  t.match(backendFacts(defaultConfig(hostInfoFrom(noHv)), noHv), {
    ok: true,
    backend: 'qemu',
    accel: 'tcg',
    reason: /kern\.hv_support is 0/,
  });
});
