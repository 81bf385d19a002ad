// What the benchmarks share: the compiled project's modules, the median, a free loopback port.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** A module of the compiled project (dist/), e.g. load('daemon/keys/builder-keys.js'). */
export const load = (path) => import(join(root, 'dist', path));

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A TCP port on 127.0.0.1 that nothing listens on at this moment. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A real linuxkitd (tcg) on a fresh state directory, with `config` written first when given, and
 * its keys made before it starts. `waitFor(pred)` polls its status; `stopDaemon()` ends it with
 * SIGTERM (which stops its VM); `close()` also removes the state directory.
 */
export async function startBenchDaemon(name, config) {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { spawn } = await import('node:child_process');
  const { ensureBuilderKeys } = await load('daemon/keys/builder-keys.js');
  const { LinuxkitClient } = await load('client/api-client.js');
  const state = mkdtempSync(join(tmpdir(), `lk-bench-${name}-`));
  if (config) writeFileSync(join(state, 'config.json'), JSON.stringify(config));
  const keys = await ensureBuilderKeys(join(state, 'keys'));
  const sshPort = await freePort();
  const daemon = spawn(
    process.execPath,
    [
      join(root, 'dist/daemon/main.js'),
      '--state-dir',
      state,
      '--accel',
      'tcg',
      '--ssh-port',
      String(sshPort),
    ],
    {
      env: {
        ...process.env,
        LINUXKIT_IMAGE_CACHE: process.env.LINUXKIT_IMAGE_CACHE ?? join(root, '.cache/images'),
      },
      stdio: 'ignore',
    },
  );
  const client = new LinuxkitClient({ socketPath: join(state, 'daemon.sock') });
  const waitFor = async (pred, what, timeoutMs = 600_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await client.status().catch(() => null);
      if (s && pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stopDaemon = async () => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) return;
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  };
  const close = async () => {
    await stopDaemon();
    rmSync(state, { recursive: true, force: true });
  };
  return { state, keys, sshPort, client, waitFor, stopDaemon, close };
}

export const isHealthy = (s) => s.state === 'running' && s.healthy;

/** The cached guest image for `arch` with this host's Debian settings, built first if missing. */
export async function cachedGuestImage(arch) {
  const { ensureGuestImage } = await load('daemon/image/guest-image.js');
  const { debianSettingsForHost } = await load('daemon/image/image-settings.js');
  const { DEFAULT_SUITES } = await load('daemon/image/debian/settings.js');
  const { settings } = await debianSettingsForHost({ suites: DEFAULT_SUITES });
  const cacheDir = process.env.LINUXKIT_IMAGE_CACHE ?? join(root, '.cache', 'images');
  return ensureGuestImage({ arch, cacheDir, settings });
}

/**
 * The VmSpec the boot benchmarks start (2 vCPUs, 1 GiB), on a fresh free port, with the keys of
 * `ensureBuilderKeys` handed in as the daemon hands them, and the guest's address-space
 * randomization as the daemon's default (`guestAslr: auto`) sets it for `accel`.
 */
export async function benchVmSpec({ arch, accel = 'tcg', kernel, initrd, cmdline, stateDir, keys }) {
  const { guestAslr } = await load('daemon/vm-spec.js');
  return {
    aslr: guestAslr('auto', accel),
    arch,
    accel,
    cpus: 2,
    memoryMiB: 1024,
    kernel,
    initrd,
    cmdline,
    sshPort: await freePort(),
    stateDir,
    consoleLog: join(stateDir, 'console.log'),
    guestFiles: {
      'linuxkit/authorized_keys': keys.clientPublicKey,
      'linuxkit/ssh_host_ed25519_key': keys.hostKey,
    },
  };
}

/**
 * benchVmSpec for `arch`'s cached image (`cachedGuestImage`): the kernel QEMU boots, the initrd,
 * the command line; `overrides` replace fields of the result (memoryMiB, aslr).
 */
export async function benchImageVmSpec(arch, image, { stateDir, keys }, overrides = {}) {
  const spec = await benchVmSpec({
    arch,
    kernel: image.kernel,
    initrd: image.initrd,
    cmdline: image.cmdline,
    stateDir,
    keys,
  });
  return { ...spec, ...overrides };
}

/** The SSH target of a bench VM on `port` (127.0.0.1), as the daemon reaches it: root, its keys. */
export function benchGuestTarget(port, keys) {
  return {
    host: '127.0.0.1',
    port,
    username: 'root',
    privateKey: readFileSync(keys.clientKey),
    hostPublicKeyLine: keys.hostPublicKeyLine,
  };
}

/** The QEMU command the daemon's backend runs for `spec`: its argv, with the firmware it picks. */
export async function benchQemuCommand(spec) {
  const { buildQemuArgs } = await load('daemon/backends/qemu/args.js');
  const { firmwareFor } = await load('daemon/backends/qemu/firmware.js');
  const { executable } = buildQemuArgs(spec);
  return buildQemuArgs(spec, { firmware: await firmwareFor(spec, executable) });
}
