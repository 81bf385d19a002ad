import t from 'tap';
import { chooseBackend, type HostFacts } from '../../daemon/backends/choose-backend.js';

const intelMac: HostFacts = { platform: 'darwin', hostArch: 'x64', hyperkitAvailable: true, kvmAvailable: false };
const appleSilicon: HostFacts = { platform: 'darwin', hostArch: 'arm64', hyperkitAvailable: false, kvmAvailable: false };
const linux: HostFacts = { platform: 'linux', hostArch: 'x64', hyperkitAvailable: false, kvmAvailable: true };
const linuxNoKvm: HostFacts = { ...linux, kvmAvailable: false };
const auto = { backend: 'auto', accel: 'auto' } as const;

const rows: Array<[string, Parameters<typeof chooseBackend>[0], HostFacts, string, string, RegExp]> = [
  ['auto on an Intel Mac with hyperkit picks hyperkit', { ...auto, arch: 'x86_64' }, intelMac, 'hyperkit', 'hvf', /Intel Mac/],
  ['auto on an Intel Mac without hyperkit picks qemu with hvf', { ...auto, arch: 'x86_64' }, { ...intelMac, hyperkitAvailable: false }, 'qemu', 'hvf', /without hyperkit/],
  ['auto on Apple Silicon picks qemu with hvf for an aarch64 guest', { ...auto, arch: 'aarch64' }, appleSilicon, 'qemu', 'hvf', /Apple Silicon/],
  ['auto on Apple Silicon emulates an x86_64 guest with tcg', { ...auto, arch: 'x86_64' }, appleSilicon, 'qemu', 'tcg', /emulated/],
  ['auto on Linux with /dev/kvm picks kvm', { ...auto, arch: 'x86_64' }, linux, 'qemu', 'kvm', /kvm/],
  ['auto on Linux without /dev/kvm picks tcg', { ...auto, arch: 'x86_64' }, linuxNoKvm, 'qemu', 'tcg', /no hardware/],
  ['an explicit tcg is kept even where kvm exists', { backend: 'qemu', accel: 'tcg', arch: 'x86_64' }, linux, 'qemu', 'tcg', /accel tcg in the config/],
];
for (const [name, wanted, host, backend, accel, reason] of rows) {
  t.test(name, async (t) => {
    const got = chooseBackend(wanted, host);
    t.equal(got.backend, backend);
    t.equal(got.accel, accel);
    t.match(got.reason, reason);
  });
}

t.test('impossible choices are refused with what would work', async (t) => {
  t.throws(() => chooseBackend({ backend: 'hyperkit', accel: 'auto', arch: 'x86_64' }, linux), /hyperkit runs only on Intel macOS/);
  t.throws(() => chooseBackend({ backend: 'hyperkit', accel: 'auto', arch: 'x86_64' }, appleSilicon), /Intel macOS/);
  t.throws(() => chooseBackend({ backend: 'hyperkit', accel: 'auto', arch: 'aarch64' }, intelMac), /only x86_64/);
  t.throws(() => chooseBackend({ backend: 'hyperkit', accel: 'kvm', arch: 'x86_64' }, intelMac), /always uses hvf/);
  t.throws(() => chooseBackend({ backend: 'qemu', accel: 'hvf', arch: 'x86_64' }, linux), /hvf needs macOS/);
  t.throws(() => chooseBackend({ backend: 'qemu', accel: 'kvm', arch: 'x86_64' }, linuxNoKvm), /\/dev\/kvm/);
  t.throws(() => chooseBackend({ backend: 'qemu', accel: 'kvm', arch: 'aarch64' }, linux), /use tcg/);
  t.throws(() => chooseBackend({ backend: 'hyperkit', accel: 'auto', arch: 'x86_64' }, { ...intelMac, hyperkitAvailable: false }), /not on PATH/);
});
