// The builder VM for real: the project's guest image booted by the QEMU backend under tcg,
// reached over SSH with the pinned host key, and used by the host's own Nix to build.
// One boot serves every read-only check here; the last test powers it off through ACPI.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { QemuBackend } from '../../daemon/backends/qemu/qemu-backend.js';
import { testGuestImage } from '../helpers/debian-mirror.js';
import { ensureBuilderKeys } from '../../daemon/keys/builder-keys.js';
import { probeBuilder, waitUntilReady } from '../../daemon/probe/readiness-probe.js';
import { HostKeyMismatchError, runGuestCommand } from '../../daemon/probe/guest-ssh.js';
import { freePort, pidsMatching, requireTool, tempDir } from '../helpers/env.js';
import { buildWhereItRuns, writeHostNixDir } from '../helpers/host-nix.js';

requireTool('qemu-system-x86_64');
requireTool('nix-build');

const state = await tempDir('e2e');
const keys = await ensureBuilderKeys(join(state, 'keys'));
const image = await testGuestImage('x86_64');
const sshPort = await freePort();
const backend = new QemuBackend({});
const bootStarted = performance.now();
const handle = await backend.start({
  arch: 'x86_64',
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 1024,
  kernel: image.kernel,
  initrd: image.initrd,
  cmdline: image.cmdline,
  sshPort,
  stateDir: state,
  consoleLog: join(state, 'console.log'),
  guestFiles: {
    'linuxkit/authorized_keys': keys.clientPublicKey,
    'linuxkit/ssh_host_ed25519_key': keys.hostKey,
  },
  // As the daemon boots it under tcg (guestAslr auto, daemon/vm-spec.ts).
  aslr: false,
});
t.teardown(async () => {
  // Whatever happened above, leave no VM behind.
  try {
    process.kill(handle.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
});

const target = {
  host: '127.0.0.1',
  port: sshPort,
  username: 'root',
  privateKey: await readFile(keys.clientKey),
  hostPublicKeyLine: keys.hostPublicKeyLine,
};

t.test('the booted VM passes the readiness probe with the pinned host key', async (t) => {
  const ready = await waitUntilReady(target, { timeoutMs: 120_000 });
  t.comment(`boot to first successful probe: ${Math.round(performance.now() - bootStarted)} ms`);
  t.match(ready.nixVersion, /^2\.\d+/);
  const again = await probeBuilder(target, { deadlineMs: 10_000 });
  t.ok(again.latencyMs > 0 && again.latencyMs < 10_000, `probe latency ${again.latencyMs} ms`);
  t.equal(again.nixVersion, ready.nixVersion);
});

t.test('a host key other than the pinned one is refused with a mismatch error', async (t) => {
  const other = await ensureBuilderKeys(join(await tempDir('otherkeys'), 'keys'));
  await t.rejects(
    probeBuilder({ ...target, hostPublicKeyLine: other.hostPublicKeyLine }, { deadlineMs: 10_000 }),
    HostKeyMismatchError,
  );
  await t.rejects(
    probeBuilder({ ...target, hostPublicKeyLine: other.hostPublicKeyLine }, { deadlineMs: 10_000 }),
    {
      message:
        /host key mismatch for root@127\.0\.0\.1:\d+: the guest presented SHA256:\S+ but SHA256:\S+ is pinned/,
    },
  );
});

t.test('the SSH forward listens on 127.0.0.1 only', async (t) => {
  const listeners = execFileSync('ss', ['-Htlnp'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`:${sshPort} `));
  t.ok(listeners.length >= 1, 'QEMU listens on the SSH port');
  for (const l of listeners)
    t.match(l, new RegExp(`\\s127\\.0\\.0\\.1:${sshPort}\\s`), `bound to loopback: ${l.trim()}`);
});

t.test('under tcg the guest runs without address-space randomization', async (t) => {
  const r = await runGuestCommand(
    target,
    'cat /proc/sys/kernel/randomize_va_space; grep -o norandmaps /proc/cmdline; ' +
      // Two processes: with randomization their stacks would lie at different addresses.
      `for i in 1 2; do sh -c 'grep "\\[stack\\]" /proc/$$/maps' | cut -d' ' -f1; done`,
    { deadlineMs: 30_000 },
  );
  t.equal(r.code, 0, r.stderr);
  const [va, word, stack1, stack2] = r.stdout.trim().split('\n');
  t.equal(va, '0', 'kernel.randomize_va_space is 0');
  t.equal(word, 'norandmaps', 'the kernel command line says so');
  t.ok(stack1 && stack1 === stack2, `the same stack in two processes (${stack1}, ${stack2})`);
});

/** A NIX_CONF_DIR whose only builder is this VM over `scheme`, and the SSH config Nix uses for it. */
async function hostNixFor(scheme: 'ssh' | 'ssh-ng'): Promise<{ dir: string; sshConfig: string }> {
  return writeHostNixDir({ dir: await tempDir(`nix-${scheme}`), scheme, port: sshPort, keys });
}

for (const scheme of ['ssh', 'ssh-ng'] as const) {
  t.test(`the host's Nix builds on the VM only, over ${scheme}://`, async (t) => {
    const { dir, sshConfig } = await hostNixFor(scheme);
    const { output } = await buildWhereItRuns({
      nixConfDir: dir,
      sshConfigFile: sshConfig,
      system: 'x86_64-linux',
      nonce: `${scheme}-${Date.now()}`,
    });
    const [builtOn, kernel, arch] = output.split(' ');
    t.equal(builtOn, 'linuxkit-builder', 'the output names the guest, not the host');
    t.not(builtOn, hostname());
    const manifest = JSON.parse(await readFile(join(image.dir, 'manifest.json'), 'utf8')) as {
      kernelVersion: string;
    };
    t.equal(kernel, manifest.kernelVersion, `built under the guest kernel ${kernel}`);
    t.equal(arch, 'x86_64');
    if (scheme === 'ssh-ng') {
      // ssh-ng's `nix-daemon --stdio` went to the nix-daemon /init started, not to a new Nix.
      const log = await runGuestCommand(target, 'cat /var/log/nix-daemon.log', { deadlineMs: 10_000 });
      t.match(log.stdout, /accepted connection from pid \d+, user root/, 'the resident nix-daemon served it');
    }
  });
}

t.test('memory a build frees goes back to the host (virtio-balloon free page reporting)', async (t) => {
  const rssMiB = async () => {
    const status = await readFile(`/proc/${handle.pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
  };
  const FILL_MIB = 400; // of the guest's 1024 MiB, in the build's tmpfs /tmp
  const { dir, sshConfig } = await hostNixFor('ssh-ng');
  const before = await rssMiB();
  let during = before;
  let building = true;
  const sampling = (async () => {
    while (building) {
      during = Math.max(during, await rssMiB());
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const { output } = await buildWhereItRuns({
    nixConfDir: dir,
    sshConfigFile: sshConfig,
    system: 'x86_64-linux',
    nonce: `balloon-${Date.now()}`,
    prelude: `dd if=/dev/zero of=$TMPDIR/fill bs=1M count=${FILL_MIB} 2>/dev/null; sleep 4;`,
  });
  building = false;
  await sampling;
  t.match(output, /^linuxkit-builder /, 'the build ran in the guest');
  // Free page reporting hands freed 2 MiB blocks back after a delay of about two seconds.
  let after = await rssMiB();
  for (let i = 0; i < 60 && after > during - FILL_MIB / 2; i++) {
    await new Promise((r) => setTimeout(r, 500));
    after = await rssMiB();
  }
  t.comment(
    `QEMU RSS: ${before.toFixed(0)} MiB before the build, ${during.toFixed(0)} MiB during it (${FILL_MIB} MiB written to its tmpfs), ${after.toFixed(0)} MiB after`,
  );
  t.ok(during - before >= FILL_MIB * 0.6, 'the build really took the memory from the host');
  t.ok(after <= during - FILL_MIB / 2, 'and at least half of it came back once the build was done');
});

t.test('stop powers the guest off through ACPI and leaves no QEMU process', async (t) => {
  const exit = await backend.stop(handle, { graceMs: 30_000 });
  t.equal(exit.code, 0);
  t.equal(exit.reason, 'guest powered off');
  t.same(pidsMatching(state), [], 'no process refers to this state directory');
  const console = await readFile(join(state, 'console.log'), 'utf8');
  t.match(console, /linuxkit-nix: ssh ready/);
});
