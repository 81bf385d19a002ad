// The hyperkit backend's guest, handed over the way the backend hands it to hyperkit but booted
// under QEMU/tcg (no hyperkit on Linux, and no /dev/vhost-vsock here to reach a guest's vsock
// from the host): the image's kernel in the form hyperkit's descriptor names (the bzImage,
// picked as the daemon picks it); the initrd with the guest files appended by the backend's
// own writeBootInitrd; the backend's own kernel command line (hyperkitCmdline, with
// linuxkit.ssh=vsock); no fw_cfg keys; a virtio-net user netdev, whose DHCP stands in for
// vpnkit's. "ssh ready" on the console then means: the keys came from /guest-files, dropbear
// listens on 127.0.0.1:22, and its banner came back through the vsock listener on port 22 (the
// guest connects to its own CID through vsock_loopback). hyperkit, vpnkit and the host side of
// vsock are not exercised here.
import t from 'tap';
import { readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { hyperkitCmdline } from '../../daemon/backends/hyperkit/args.js';
import { hyperkitDescriptor } from '../../daemon/backends/hyperkit/descriptor.js';
import { reconstructConsoleRing, toLines } from '../../daemon/backends/hyperkit/console-ring.js';
import { writeBootInitrd } from '../../daemon/backends/hyperkit/guest-files.js';
import {
  GUEST_FILES,
  GUEST_READY_MARKER,
  GUEST_VSOCK_SWITCH,
  guestBootError,
} from '../../daemon/image/guest-contract.js';
import { testGuestImage } from '../helpers/debian-mirror.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { bootVm, makeKeys, powerDown, waitForConsole, type TestVm } from '../image/vm-harness.js';

for (const tool of ['qemu-system-x86_64', 'ssh-keygen']) requireTool(tool);

const image = await testGuestImage('x86_64');
const dir = await tempDir('hk-guest');
const keys = await makeKeys(dir);
const vms: TestVm[] = [];
t.teardown(async () => {
  for (const vm of vms) vm.kill(); // leave no QEMU behind, whatever failed
  await rm(dir, { recursive: true, force: true });
});

const kernelForm = hyperkitDescriptor.kernelForm.x86_64!;
const kernel = image.kernels[kernelForm];
if (!kernel) throw new Error(`the x86_64 guest image ${image.hash} has no ${kernelForm} for hyperkit`);
const cmdline = hyperkitCmdline({ cmdline: image.cmdline, disk: undefined });
const guestFiles = { [GUEST_FILES.authorizedKeys]: keys.clientPub, [GUEST_FILES.hostKey]: keys.host };

/** "[    5.123456] linuxkit-nix: ..." as printk prints a /dev/kmsg line with its time stamp. */
const STAMPED_LINE = /^\[\s*\d+\.\d{6}\] linuxkit-nix: /;

/** What a TCP connection to `port` receives before it closes, or `timeoutMs` passes. */
function receivedFrom(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const sock = connect(port, '127.0.0.1');
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on('data', (b) => (got += b.toString('latin1')));
    sock.on('close', done);
    sock.on('error', done);
  });
}

/** The console as a ring of `size` bytes holds it after hyperkit wrote it: byte n at n % size. */
function asRing(text: Buffer, size: number): Buffer {
  const ring = Buffer.alloc(size);
  for (let n = 0; n < text.length; n++) ring[n % size] = text[n];
  return ring;
}

t.test(
  `with ${GUEST_VSOCK_SWITCH}, keys appended to the initrd and no fw_cfg, the guest is ready through vsock`,
  async (t) => {
    t.equal(kernelForm, 'bzImage', "hyperkit's kexec loads only a bzImage");
    t.match(cmdline, new RegExp(`(^| )${GUEST_VSOCK_SWITCH}( |$)`), 'the backend passes the switch');
    const initrd = await writeBootInitrd(image.initrd, guestFiles, join(dir, 'boot-initrd.img'));
    // No `keys`: the harness then passes no -fw_cfg at all.
    const vm = await bootVm({ image: { ...image, kernel, initrd, cmdline }, dir });
    vms.push(vm);
    const readyAt = await waitForConsole(vm, GUEST_READY_MARKER, 180_000);
    t.comment(
      `QEMU start → "${GUEST_READY_MARKER}" (vsock way in): ${Math.round(readyAt - vm.startedMs)} ms`,
    );

    const console = await readFile(vm.consoleLog);
    const text = console.toString('utf8');
    t.equal(guestBootError(text), null, 'no error line on the console');
    t.notMatch(text, /fw_cfg/, 'nothing about fw_cfg: the keys came from /guest-files');
    const ours = toLines(text).filter((l) => l.includes('linuxkit-nix: '));
    t.ok(ours.length > 0, '/init printed its lines');
    for (const line of ours) t.match(line, STAMPED_LINE, `time-stamped through /dev/kmsg: ${line}`);

    // dropbear listens on 127.0.0.1 only: QEMU's forward to the guest's port 22 on eth0 gets no
    // SSH banner (the guest refuses, and QEMU closes the connection).
    const onEth0 = await receivedFrom(vm.port, 3000);
    t.notMatch(onEth0, /SSH-/, 'no SSH on eth0');

    // What console-ring.ts relies on: the boot's console, laid into rings that wrap at many
    // offsets, reads back as its newest part, in order, from the first whole line on.
    t.comment(`console at ready: ${console.length} bytes, ${toLines(text).length} lines`);
    for (const size of [0.3, 0.45, 0.6, 0.75, 0.9].map((f) => Math.floor(console.length * f))) {
      const got = reconstructConsoleRing(asRing(console, size));
      const oldest = console.length - size;
      const firstWhole =
        oldest === 0 || console[oldest - 1] === 0x0a ? oldest : console.indexOf(0x0a, oldest) + 1;
      t.same(
        { wrapped: got.wrapped, text: got.text },
        { wrapped: true, text: console.subarray(firstWhole).toString('utf8') },
        `a ${size}-byte ring wrapped ${Math.floor(console.length / size)} times reads back in order`,
      );
    }

    const exit = await powerDown(vm, 15_000);
    t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'ACPI power-off, exit 0');
    const shutdown = toLines(await readFile(vm.consoleLog, 'utf8')).find((l) =>
      l.includes('linuxkit-nix: shutting down'),
    );
    t.match(shutdown, STAMPED_LINE, 'the shutdown line is time-stamped too');
  },
);

t.test(
  `with ${GUEST_VSOCK_SWITCH}, keys only in fw_cfg are not looked at: the error names /guest-files`,
  async (t) => {
    // The image's own initrd (nothing appended) and the keys where QEMU's way in would read them.
    const vm = await bootVm({ image: { ...image, kernel, cmdline }, dir, keys });
    vms.push(vm);
    // The guest powers itself off; a timer that is cleared, so it keeps no one waiting after.
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      vm.exited,
      new Promise<null>((r) => {
        timer = setTimeout(() => r(null), 180_000);
      }),
    ]);
    clearTimeout(timer);
    t.ok(exit, 'QEMU exits on its own');
    t.equal(exit?.code, 0, 'a power-off, not a crash');
    const console = await readFile(vm.consoleLog, 'utf8');
    t.equal(
      guestBootError(console),
      'no client key handed in (/guest-files/linuxkit/authorized_keys, appended to the initrd): cannot allow any SSH login',
    );
    t.match(
      toLines(console).find((l) => l.includes('linuxkit-nix: error: ')),
      /^\[\s*\d+\.\d{6}\] linuxkit-nix: error: /,
      'the error line is time-stamped',
    );
    t.notMatch(console, GUEST_READY_MARKER);
  },
);
