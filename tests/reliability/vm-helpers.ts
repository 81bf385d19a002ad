// Plumbing shared by the real-VM reliability and maintenance tests: a config written before the
// daemon starts, the daemon's CPU time, a fast watch on the QEMU processes of a state directory,
// the guest over SSH with the daemon's own keys, an event recorder, and the key-leak check.
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { StateEvent } from '../../daemon/controller.js';
import { runGuestCommand, type GuestCommandResult } from '../../daemon/probe/guest-ssh.js';
import { writeJsonAtomic } from '../../daemon/fs/atomic-write.js';
import type { DaemonUnderTest } from '../helpers/daemon-process.js';

/** Writes `<stateDir>/config.json` (any subset of the settings; the daemon fills the rest). */
export async function writeConfig(stateDir: string, config: Record<string, unknown>): Promise<void> {
  await writeJsonAtomic(join(stateDir, 'config.json'), config, { mode: 0o644 });
}

export async function readConfig(stateDir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(stateDir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

/** Settings that keep real-VM tests quick on a loaded machine under tcg. */
export const FAST_TEST_CONFIG = {
  memoryMiB: 1024,
  cpus: 1,
  probe: { intervalMs: 5000, timeoutMs: 5000, bootGraceMs: 180_000, degradedRestartMs: 600_000 },
  stopGraceMs: 20_000,
};

/**
 * FAST_TEST_CONFIG with a probe that waits out a slow guest: the e2e tests of users' paths must
 * pass on a 2-core machine loaded by other runs, where one SSH round trip to a tcg guest can take
 * longer than 5 s and a boot several minutes.
 */
export const PATIENT_TEST_CONFIG = {
  ...FAST_TEST_CONFIG,
  probe: { intervalMs: 15_000, timeoutMs: 15_000, bootGraceMs: 900_000, degradedRestartMs: 900_000 },
};

/** The longest a tcg boot may take on a loaded machine, and the test-file timeout that allows a few. */
export const PATIENT_BOOT_MS = 600_000;
export const PATIENT_FILE_TIMEOUT_MS = 2_400_000;

/** CPU time (user + system, ms) a process used: its own, and that of the children it reaped. */
export function cpuTimeMs(pid: number): { self: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  // f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
  return { self: (Number(f[11]) + Number(f[12])) * tick, children: (Number(f[13]) + Number(f[14])) * tick };
}

/** Live (not zombie) QEMU processes whose command line names `stateDir`, read from /proc directly. */
export function qemuPidsFor(stateDir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (!cmdline.includes('qemu-system') || !cmdline.includes(`${stateDir}/`)) continue;
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (st.slice(st.lastIndexOf(')') + 2).startsWith('Z')) continue;
      pids.push(Number(name));
    } catch {
      // The process ended between readdir and read.
    }
  }
  return pids;
}

/** Samples the QEMU processes of a state directory every `everyMs` until stopped. */
export class QemuWatch {
  samples = 0;
  max = 0;
  /** Times (ms since start) at which more than one QEMU ran for the state directory. */
  readonly overlaps: Array<{ atMs: number; pids: number[] }> = [];
  readonly seenPids = new Set<number>();
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly stateDir: string,
    private readonly everyMs = 20,
  ) {
    const tick = () => {
      const pids = qemuPidsFor(this.stateDir);
      this.samples++;
      this.max = Math.max(this.max, pids.length);
      for (const p of pids) this.seenPids.add(p);
      if (pids.length > 1) this.overlaps.push({ atMs: Date.now() - this.started, pids });
      this.timer = setTimeout(tick, this.everyMs);
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Runs a command in the guest with the daemon's own keys (as the daemon's probe does). */
export async function guestRun(
  stateDir: string,
  sshPort: number,
  command: string,
  deadlineMs = 120_000,
): Promise<GuestCommandResult> {
  const res = await runGuestCommand(
    {
      host: '127.0.0.1',
      port: sshPort,
      username: 'root',
      privateKey: await readFile(join(stateDir, 'keys', 'client_ed25519')),
      hostPublicKeyLine: (await readFile(join(stateDir, 'keys', 'ssh_host_ed25519_key.pub'), 'utf8')).trim(),
    },
    command,
    { deadlineMs },
  );
  if (res.code !== 0)
    throw new Error(`${command} failed in the guest (exit ${res.code}): ${res.stderr || res.stdout}`);
  return res;
}

export interface EventRecording {
  events: StateEvent[];
  /** Why the stream stopped before close() (the daemon ended it, or it failed); null while open. */
  readonly ended: string | null;
  /** Asserts the stream is still open: "no such event since" means nothing unless it is. */
  assertOpen(t: Pick<Test, 'equal'>, what: string): void;
  close(): void;
}

/** Collects the daemon's /v1/events stream into an array, remembering why it ended if it did. */
export function recordEvents(daemon: DaemonUnderTest): EventRecording {
  const events: StateEvent[] = [];
  let ended: string | null = null;
  let closed = false;
  const sub = daemon.client.events((e) => events.push(e));
  sub.done.then(
    () => {
      if (!closed) ended = `the daemon ended the event stream after ${events.length} events`;
    },
    (err: Error) => {
      if (!closed) ended = `the event stream failed after ${events.length} events: ${err.message}`;
    },
  );
  return {
    events,
    get ended() {
      return ended;
    },
    assertOpen: (t, what) =>
      t.equal(ended, null, `the event stream is still open, so ${what} means something`),
    close: () => {
      closed = true;
      sub.close();
    },
  };
}

/** Resolves once an event matching `pred` is recorded. */
export async function waitForEvent(
  rec: { events: StateEvent[]; ended?: string | null },
  pred: (e: StateEvent) => boolean,
  timeoutMs: number,
  what: string,
): Promise<StateEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = rec.events.find(pred);
    if (e) return e;
    if (rec.ended) throw new Error(`no ${what}: ${rec.ended}`);
    if (Date.now() > deadline) {
      const last = rec.events.slice(-5).map((x) => `${x.type}: ${x.message}`);
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last events: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The base64 body lines of the private keys in `<stateDir>/keys` (each at least 40 characters). */
export async function privateKeyBodies(stateDir: string): Promise<string[]> {
  const bodies: string[] = [];
  for (const name of ['client_ed25519', 'ssh_host_ed25519_key']) {
    const text = await readFile(join(stateDir, 'keys', name), 'utf8');
    for (const line of text.split('\n'))
      if (/^[A-Za-z0-9+/=]{40,}$/.test(line.trim())) bodies.push(line.trim());
  }
  return bodies;
}

async function filesUnder(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (p === skip) continue;
    if (entry.isDirectory()) out.push(...(await filesUnder(p, skip)));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

/**
 * After a run: no file in the state directory outside keys/ (daemon log, console logs, QEMU's
 * stderr log, vm.json, config) holds a line of either private key, nor a PEM private key header.
 */
export async function assertNoKeyMaterial(t: Test, stateDir: string): Promise<void> {
  const bodies = await privateKeyBodies(stateDir);
  t.ok(bodies.length >= 4, `${bodies.length} private key lines to look for`);
  const files = await filesUnder(stateDir, join(stateDir, 'keys'));
  let bytes = 0;
  const leaks: string[] = [];
  for (const f of files) {
    if ((await stat(f)).size > 64 * 1024 * 1024) continue;
    const text = await readFile(f, 'latin1');
    bytes += text.length;
    if (/PRIVATE KEY-----/.test(text)) leaks.push(`${f}: a PEM private key header`);
    for (const b of bodies) if (text.includes(b)) leaks.push(`${f}: a private key line`);
  }
  t.ok(
    files.some((f) => f.endsWith('daemon.log')),
    'the daemon log was searched',
  );
  t.ok(
    files.some((f) => f.includes('/console/')),
    'console logs were searched',
  );
  t.same(leaks, [], `no key material in ${files.length} files (${bytes} bytes) of ${stateDir}`);
  t.comment(
    `key material: searched ${files.length} files, ${bytes} bytes, for ${bodies.length} private key lines: ${leaks.length} found`,
  );
}

/** Kills (SIGKILL) every QEMU of the state directory; for teardowns. */
export function killQemus(stateDir: string): void {
  for (const pid of qemuPidsFor(stateDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
