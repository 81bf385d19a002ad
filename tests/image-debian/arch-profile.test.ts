// What the image carries for hyperkit's way in (guest/init with linuxkit.ssh=vsock): socat for
// the vsock listener, and the vsock modules /init loads from etc/linuxkit/modules.vsock.
import t from 'tap';
import { ARCH_PROFILES, DISK_MODULES, PROGRAMS, SEEDS } from '../../daemon/image/debian/arch-profile.js';

t.test('socat is a seed and a program, so its shared-library closure comes along', async (t) => {
  t.ok(SEEDS.includes('socat'), 'socat is seeded');
  t.ok(PROGRAMS.includes('usr/bin/socat'), 'usr/bin/socat is scanned for DT_NEEDED');
});

t.test("x86_64 (hyperkit's guest) lists the vsock transport and loopback; aarch64 none", async (t) => {
  t.same(ARCH_PROFILES.x86_64.vsockModules, [
    'vsock',
    'vmw_vsock_virtio_transport_common',
    'vmw_vsock_virtio_transport',
    'vsock_loopback',
  ]);
  t.same(ARCH_PROFILES.aarch64.vsockModules, []);
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const { netModules, baseModules, vsockModules } = ARCH_PROFILES[arch];
    t.same(
      vsockModules.filter((m) => [...netModules, ...baseModules, ...DISK_MODULES].includes(m)),
      [],
      `${arch}: no vsock module is also a net, base or disk module`,
    );
    t.same(netModules, ['virtio_pci', 'virtio_net'], `${arch}: eth0's driver loads first`);
  }
});
