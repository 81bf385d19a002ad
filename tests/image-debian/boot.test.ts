// The Debian-built guest image booted for real under QEMU/tcg: SSH with the pinned host key
// answers and Nix runs. Images come from the mirror this machine's apt uses, cached in
// <image cache>/debian (apart from the shell-built images, so neither prunes the other's).
import t from 'tap';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { aptMirrors } from '../../daemon/image/debian/apt-sources.js';
import { buildDebianGuestImage } from '../../daemon/image/debian/build.js';
import { DEFAULT_SUITES } from '../../daemon/image/debian/settings.js';
import { defaultGuestDir } from '../../daemon/image/guest-image.js';
import { GUEST_READY_MARKER } from '../../daemon/image/guest-contract.js';
import { imageCacheDir, requireTool, tempDir } from '../helpers/env.js';
import { bootVm, makeKeys, sshUntilOk, waitForConsole, type TestVm } from '../image/vm-harness.js';

for (const tool of ['qemu-system-x86_64', 'ssh', 'ssh-keygen']) requireTool(tool);

const sources = await Promise.all(
  ['/etc/apt/sources.list', ...(await readdir('/etc/apt/sources.list.d').catch(() => [] as string[])).map((n) => `/etc/apt/sources.list.d/${n}`)]
    .filter((f) => /\.(list|sources)$/.test(f))
    .map((f) => readFile(f, 'utf8').catch(() => '')),
);
const { mirror, securityMirror } = aptMirrors(sources);
if (!mirror || !securityMirror) throw new Error('this machine\'s apt sources name no Debian mirror and security mirror');
const dir = await tempDir('debian-boot');
const keys = await makeKeys(dir);
const vms: TestVm[] = [];
t.teardown(async () => {
  for (const vm of vms) vm.kill();
  await rm(dir, { recursive: true, force: true });
});

// The harness boots x86_64 (q35); the aarch64 image's boot is left to an aarch64 harness.
for (const arch of ['x86_64'] as const) {
  t.test(`${arch}: boots to SSH with the pinned host key and runs Nix`, async (t) => {
    const image = await buildDebianGuestImage({
      arch,
      cacheDir: join(imageCacheDir, 'debian'),
      guestDir: defaultGuestDir(),
      settings: { mirror, securityMirror, suites: DEFAULT_SUITES },
    });
    const vm = await bootVm({ image, dir, keys });
    vms.push(vm);
    const markerAt = await waitForConsole(vm, GUEST_READY_MARKER, 300_000);
    const { stdout, atMs } = await sshUntilOk(vm, keys, 'nix-store --version; uname -m', 120_000);
    t.match(stdout, new RegExp(`^nix-store \\(Nix\\) 2\\.\\d+\\.\\d+\\n${arch}\\n$`));
    t.comment(`${arch}: kernel ${image.manifest.kernel.bytes} bytes (${image.manifest.kernel.format}), initrd ${image.manifest.initrd.bytes} bytes; QEMU start → ready marker ${Math.round(markerAt - vm.startedMs)} ms, → ssh ${Math.round(atMs - vm.startedMs)} ms`);
    vm.kill();
  });
}
