// The kernel command-line switches /init reads, as the backends render them.
import t from 'tap';
import {
  GUEST_DISK_DEVICE,
  GUEST_VSOCK_SWITCH,
  guestKernelCmdline,
  NO_ASLR_SWITCH,
} from '../../daemon/image/guest-contract.js';

const base = 'console=ttyS0 quiet panic=-1';

t.test("QEMU's way in adds no ssh switch; hyperkit's adds linuxkit.ssh=vsock last", async (t) => {
  t.equal(guestKernelCmdline(base), base);
  t.equal(guestKernelCmdline(base, { disk: GUEST_DISK_DEVICE }), `${base} linuxkit.disk=/dev/vda`);
  t.equal(GUEST_VSOCK_SWITCH, 'linuxkit.ssh=vsock', 'guest/init matches this very word');
  t.equal(guestKernelCmdline(base, { ssh: 'vsock' }), `${base} linuxkit.ssh=vsock`);
  t.equal(
    guestKernelCmdline(`  ${base} `, { disk: GUEST_DISK_DEVICE, storeSize: '2g', ssh: 'vsock' }),
    `${base} linuxkit.disk=/dev/vda linuxkit.store_size=2g linuxkit.ssh=vsock`,
  );
  t.equal(guestKernelCmdline('', { ssh: 'vsock' }), 'linuxkit.ssh=vsock');
});

t.test("aslr false adds the kernel's norandmaps last; true or absent adds nothing", async (t) => {
  t.equal(
    NO_ASLR_SWITCH,
    'norandmaps',
    "the kernel's own word (Documentation/admin-guide/kernel-parameters)",
  );
  t.equal(guestKernelCmdline(base, { aslr: false }), `${base} norandmaps`);
  t.equal(guestKernelCmdline(base, { aslr: true }), base);
  t.equal(
    guestKernelCmdline(base, { disk: GUEST_DISK_DEVICE, ssh: 'vsock', aslr: false }),
    `${base} linuxkit.disk=/dev/vda linuxkit.ssh=vsock norandmaps`,
  );
});

t.test('a bad switch value is refused, naming the field and what would be right', async (t) => {
  t.throws(() => guestKernelCmdline(base, { ssh: 'tcp' as 'vsock' }), {
    message: `ssh must be "vsock" (hyperkit's way in) or absent (QEMU's); got "tcp"`,
  });
  t.throws(() => guestKernelCmdline(base, { disk: 'vda' }), {
    message: 'disk must be a device path like /dev/vda; got "vda"',
  });
  t.throws(() => guestKernelCmdline(base, { storeSize: 'half' }), {
    message: 'storeSize must be a tmpfs size like "50%" or "2g"; got "half"',
  });
});
