// A bare QEMU boot of the guest image for its own tests: the exact command line the image is
// meant for, without the daemon's backend, plus the few client pieces (ssh, QMP) the tests need.
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { GuestImage } from '../../daemon/image/guest-image.js';
import { freePort } from '../helpers/env.js';

export interface TestKeys {
  client: string;
  clientPub: string;
  host: string;
  knownHostsFor(port: number): Promise<string>;
}

export async function makeKeys(dir: string): Promise<TestKeys> {
  const client = join(dir, 'client');
  const host = join(dir, 'host');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'linuxkit-test-client', '-f', client]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'linuxkit-test-host', '-f', host]);
  return {
    client,
    clientPub: `${client}.pub`,
    host,
    async knownHostsFor(port) {
      const file = join(dir, `known_hosts.${port}`);
      await writeFile(file, `[127.0.0.1]:${port} ${(await readFile(`${host}.pub`, 'utf8')).trim()}\n`);
      return file;
    },
  };
}

export interface VmExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  atMs: number;
}

export interface TestVm {
  pid: number;
  port: number;
  consoleLog: string;
  qmpSocket: string;
  /** performance.now() when QEMU was spawned. */
  startedMs: number;
  exited: Promise<VmExitInfo>;
  isRunning(): boolean;
  kill(): void;
}

export interface BootOptions {
  image: GuestImage;
  dir: string;
  /** Omit to boot without any keys handed in. */
  keys?: TestKeys;
  disk?: string;
  appendExtra?: string;
}

export async function bootVm(opts: BootOptions): Promise<TestVm> {
  const port = await freePort();
  const consoleLog = join(opts.dir, `console.${port}.log`);
  const qmpSocket = join(opts.dir, `qmp.${port}.sock`);
  const append = [opts.image.cmdline, opts.appendExtra].filter(Boolean).join(' ');
  // biome-ignore format: option and value pairs, one per line, read as the command line
  const argv = [
    '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-m', '1024', '-smp', '2',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-serial', `file:${consoleLog}`,
    '-kernel', opts.image.kernel, '-initrd', opts.image.initrd, '-append', append,
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', 'virtio-net-pci,netdev=n0',
    '-device', 'virtio-rng-pci',
    '-qmp', `unix:${qmpSocket},server=on,wait=off`,
  ];
  if (opts.keys) {
    argv.push('-fw_cfg', `name=opt/linuxkit/authorized_keys,file=${opts.keys.clientPub}`);
    argv.push('-fw_cfg', `name=opt/linuxkit/ssh_host_ed25519_key,file=${opts.keys.host}`);
  }
  if (opts.disk) {
    argv.push('-drive', `file=${opts.disk},if=none,id=d0,format=raw,cache=writeback,discard=unmap`);
    argv.push('-device', 'virtio-blk-pci,drive=d0');
  }
  const startedMs = performance.now();
  const child = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let running = true;
  const exited = new Promise<VmExitInfo>((resolveExit, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      running = false;
      if (stderr.trim()) process.stderr.write(`qemu stderr: ${stderr}`);
      resolveExit({ code, signal, atMs: performance.now() });
    });
  });
  await new Promise<void>((resolveSpawn, reject) => {
    child.once('spawn', resolveSpawn);
    child.once('error', reject);
  });
  return {
    pid: child.pid!,
    port,
    consoleLog,
    qmpSocket,
    startedMs,
    exited,
    isRunning: () => running,
    kill: () => {
      if (running) child.kill('SIGKILL');
    },
  };
}

/** Resolves with the time the console showed `text`; rejects if QEMU exits or time runs out. */
export async function waitForConsole(vm: TestVm, text: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const log = await readFile(vm.consoleLog, 'utf8').catch(() => '');
    if (log.includes(text)) return performance.now();
    if (!vm.isRunning()) throw new Error(`QEMU exited before the console showed "${text}"; console:\n${log}`);
    if (performance.now() > deadline)
      throw new Error(`no "${text}" on the console within ${timeoutMs} ms; console:\n${log}`);
    await sleep(50);
  }
}

export function sshArgs(keys: TestKeys, knownHosts: string, port: number): string[] {
  // biome-ignore format: option and value pairs, one per line, read as the command line
  return [
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=10',
    '-i', keys.client,
    '-p', String(port),
    'root@127.0.0.1',
  ];
}

/** Runs `command` on the guest over the system ssh client; retries until it succeeds once. */
export async function sshUntilOk(
  vm: TestVm,
  keys: TestKeys,
  command: string,
  timeoutMs: number,
): Promise<{ stdout: string; atMs: number }> {
  const knownHosts = await keys.knownHostsFor(vm.port);
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const stdout = await run('ssh', [...sshArgs(keys, knownHosts, vm.port), command]);
      return { stdout, atMs: performance.now() };
    } catch (err) {
      last = (err as Error).message;
    }
    if (!vm.isRunning()) throw new Error(`QEMU exited while waiting for ssh: ${last}`);
    if (performance.now() > deadline) throw new Error(`ssh did not succeed within ${timeoutMs} ms: ${last}`);
    await sleep(100);
  }
}

/** Sends QMP commands in order (after the capabilities handshake) and returns their replies. */
export async function qmp(socketPath: string, commands: string[]): Promise<unknown[]> {
  const sock = connect(socketPath);
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  sock.on('data', (b) => {
    buf += b.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      for (const w of waiters.splice(0)) w();
    }
  });
  await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
  const next = async (pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    for (;;) {
      const i = lines.findIndex(pred);
      if (i >= 0) return lines.splice(i, 1)[0];
      await new Promise<void>((res, rej) => {
        waiters.push(res);
        sock.once('close', () => rej(new Error('QMP socket closed')));
      });
    }
  };
  try {
    await next((m) => 'QMP' in m);
    const replies: unknown[] = [];
    for (const execute of ['qmp_capabilities', ...commands]) {
      sock.write(`${JSON.stringify({ execute })}\n`);
      const reply = await next((m) => 'return' in m || 'error' in m);
      if ('error' in reply) throw new Error(`QMP ${execute} failed: ${JSON.stringify(reply.error)}`);
      if (execute !== 'qmp_capabilities') replies.push(reply.return);
    }
    return replies;
  } finally {
    sock.destroy();
  }
}

/** Powers the guest off through ACPI and resolves with QEMU's exit and how long it took. */
export async function powerDown(vm: TestVm, timeoutMs: number): Promise<VmExitInfo & { tookMs: number }> {
  const sent = performance.now();
  await qmp(vm.qmpSocket, ['system_powerdown']);
  const exit = await Promise.race([vm.exited, sleep(timeoutMs).then(() => null)]);
  if (!exit) throw new Error(`QEMU still running ${timeoutMs} ms after system_powerdown`);
  return { ...exit, tookMs: exit.atMs - sent };
}

export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} failed: ${stderr.trim() || err.message}`));
      else res(stdout);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}
