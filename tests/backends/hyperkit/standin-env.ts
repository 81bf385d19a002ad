// Shared by the hyperkit backend tests: the STAND-IN hyperkit and vpnkit executables
// (tests/fixtures/hyperkit-standin, Node scripts that follow hyperkit's and vpnkit's process
// contracts; not the product), a spec whose kernel and initrd are placeholder files, and the
// SSH-side view a test has of the guest: a probe and commands, both through the vsock bridge.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { VmSpec } from '../../../daemon/backend.js';
import { hyperkitPaths } from '../../../daemon/backends/hyperkit/args.js';
import {
  HyperkitBackend,
  type HyperkitBackendOptions,
} from '../../../daemon/backends/hyperkit/hyperkit-backend.js';
import { freePort, pidsMatching, repoRoot, tempDir } from '../../helpers/env.js';

export const standinDir = join(repoRoot, 'tests', 'fixtures', 'hyperkit-standin');
export const hyperkitStandin = join(standinDir, 'hyperkit.mjs');
export const vpnkitStandin = join(standinDir, 'vpnkit.mjs');

type Teardown = { teardown(fn: () => unknown): void };

/** The backend under test, running the stand-ins instead of hyperkit and vpnkit. */
export function standinBackend(over: HyperkitBackendOptions = {}): HyperkitBackend {
  return new HyperkitBackend({
    hyperkitBinary: hyperkitStandin,
    vpnkitBinary: vpnkitStandin,
    consolePollMs: 100,
    ...over,
  });
}

/**
 * A spec in a fresh state directory (removed at teardown, with any stand-in still running in it
 * killed first). `cmdline` carries the stand-in guest's knobs, e.g. "standin.acpid=off".
 */
export async function standinSpec(t: Teardown, cmdline = '', sub = 'state'): Promise<VmSpec> {
  const root = await tempDir('hk');
  const stateDir = join(root, sub);
  t.teardown(async () => {
    killStandinsIn(stateDir);
    await rm(root, { recursive: true, force: true });
  });
  const image = join(root, 'image');
  await mkdir(image, { recursive: true });
  await writeFile(join(image, 'bzImage'), 'placeholder kernel: the stand-in boots nothing');
  await writeFile(join(image, 'initrd'), 'placeholder initrd');
  const keys = join(root, 'keys');
  await mkdir(keys);
  await writeFile(join(keys, 'client.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStandin test@host\n');
  await writeFile(
    join(keys, 'ssh_host_ed25519_key'),
    '-----BEGIN OPENSSH PRIVATE KEY-----\nstandin\n-----END OPENSSH PRIVATE KEY-----\n',
  );
  return {
    arch: 'x86_64',
    accel: 'hvf',
    cpus: 1,
    memoryMiB: 512,
    kernel: join(image, 'bzImage'),
    initrd: join(image, 'initrd'),
    cmdline: `console=ttyS0 printk.time=1 ${cmdline}`.trim(),
    sshPort: await freePort(),
    stateDir,
    consoleLog: join(stateDir, 'console', 'boot-1.log'),
    guestFiles: {
      'linuxkit/authorized_keys': join(keys, 'client.pub'),
      'linuxkit/ssh_host_ed25519_key': join(keys, 'ssh_host_ed25519_key'),
    },
  };
}

/** Whatever a test left behind: no stand-in survives its state directory. */
export function killStandinsIn(stateDir: string): void {
  for (const pid of pidsMatching(stateDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** The live stand-in processes of a state directory. */
export function standinsIn(stateDir: string): { hyperkit: number[]; vpnkit: number[] } {
  return {
    hyperkit: pidsMatching(stateDir).filter((p) => cmdOf(p).includes('hyperkit.mjs')),
    vpnkit: pidsMatching(stateDir).filter((p) => cmdOf(p).includes('vpnkit.mjs')),
  };
}

function cmdOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** The files a VM keeps in its state directory while it runs, that must not outlive it. */
export function runtimeFilesLeft(spec: VmSpec): string[] {
  const p = hyperkitPaths(spec.stateDir);
  return [p.pidFile, p.vpnkitPidFile, p.ethSocket, p.portSocket, p.connectSocket, p.bootInitrd].filter((f) =>
    existsSync(f),
  );
}

/** Opens an "SSH" connection through the bridge and waits for the guest's banner. */
export function sshConnect(
  port: number,
  timeoutMs = 3000,
): Promise<{ send(line: string): Promise<string>; close(): void; banner: string }> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    let waiting: ((line: string) => void) | null = null;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no SSH banner on 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`connection to 127.0.0.1:${port} closed before the banner`));
    });
    s.on('data', (c) => {
      buf += c.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line.startsWith('SSH-2.0-')) {
          clearTimeout(timer);
          resolve({
            banner: line,
            close: () => s.destroy(),
            send: (l: string) =>
              new Promise((res) => {
                waiting = res;
                s.write(`${l}\n`);
              }),
          });
        } else if (waiting) {
          const w = waiting;
          waiting = null;
          w(line);
        }
      }
    });
  });
}

/** The supervisor's probe for these tests: the guest's SSH answers and reports its Nix. */
export async function probeThroughBridge(port: number): Promise<{ latencyMs: number; nixVersion: string }> {
  const started = Date.now();
  const c = await sshConnect(port, 2000);
  try {
    const answer = await Promise.race([
      c.send('version'),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer to version')), 2000)),
    ]);
    const m = /\(Nix\) (\S+)/.exec(answer);
    if (!m) throw new Error(`unexpected answer: ${answer}`);
    return { latencyMs: Date.now() - started, nixVersion: m[1] };
  } finally {
    c.close();
  }
}

/** Runs a stand-in guest command (poweroff, reboot, ...) the way a user would over SSH. */
export async function guestCommand(port: number, command: string): Promise<void> {
  const c = await sshConnect(port);
  try {
    const answer = await c.send(command);
    if (answer !== 'ok') throw new Error(`guest command ${command}: ${answer}`);
  } finally {
    c.close();
  }
}

/** Resolves once `pred` holds, checking every 20 ms; rejects after `ms` saying what it waited for. */
export async function eventually<T>(
  what: string,
  ms: number,
  fn: () => Promise<T | null | false> | T | null | false,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}
