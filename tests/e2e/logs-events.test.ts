// `linuxkitctl logs -f`, `linuxkitctl events` and the daemon log's rotation, against the real
// linuxkitd and VM (tcg). The log is filled almost to its rotation size before the daemon starts,
// so the daemon's own lines rotate it while `logs -f` follows: the follower must print every line
// the daemon wrote, once and in order, across the rotation; `events` prints the restart that
// follows in order, exits 0 on Ctrl-C and 3 when the daemon ends the stream.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StateEvent } from '../../daemon/controller.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { ctlMain, isHealthy, startTestDaemon } from '../helpers/daemon-process.js';
import {
  PATIENT_BOOT_MS,
  PATIENT_FILE_TIMEOUT_MS,
  PATIENT_TEST_CONFIG,
  killQemus,
  writeConfig,
} from '../reliability/vm-helpers.js';

requireTool('qemu-system-x86_64');

const BOOT_MS = PATIENT_BOOT_MS;
// Several tcg boots on a loaded machine: more than tap's default of 600 s per file.
t.setTimeout(PATIENT_FILE_TIMEOUT_MS);
// The daemon's rotation size (createDaemonLogger's default) and how many rotated files it keeps.
const ROTATE_BYTES = 5 * 1024 * 1024;
const KEEP = 3;
const HEADROOM = 24 * 1024;

const stateDir = await tempDir('logs');
const logDir = join(stateDir, 'log');
const daemonLog = join(logDir, 'daemon.log');
await writeConfig(stateDir, PATIENT_TEST_CONFIG);
await mkdir(logDir, { recursive: true, mode: 0o700 });
// An earlier life of the daemon: a log just under the rotation size and three rotated files.
const filler: string[] = [];
for (let i = 0, size = 0; size < ROTATE_BYTES - HEADROOM; i++) {
  const line = `filler line ${i} ${'x'.repeat(90)}`;
  filler.push(line);
  size += line.length + 1;
}
await writeFile(daemonLog, `${filler.join('\n')}\n`, { mode: 0o600 });
for (let i = 1; i <= KEEP; i++) await writeFile(`${daemonLog}.${i}`, `rotated file ${i}\n`, { mode: 0o600 });

const daemon = await startTestDaemon({ stateDir });

interface Follower {
  proc: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}
function ctlChild(args: string[]): Follower {
  const proc = spawn(process.execPath, [ctlMain, '--socket', daemon.socket, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  let partial = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    out.push(...parts);
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, out, exited };
}

const follower = ctlChild(['logs', '-f', '--lines', '3']);
const events = ctlChild(['events', '--json']);
t.teardown(() => {
  follower.proc.kill('SIGKILL');
  events.proc.kill('SIGKILL');
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});

const parsedEvents = () =>
  events.out.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as StateEvent);
async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

t.test(
  'the daemon rotates its log while running: daemon.log.1 holds the old log, the oldest is dropped',
  async (t) => {
    const booted = Date.now();
    await daemon.waitFor(isHealthy, BOOT_MS, 'the first boot');
    t.comment(`daemon start to healthy: ${Date.now() - booted} ms`);
    // Each accepted action is one log line: ask until the log rotates.
    let requests = 0;
    const started = Date.now();
    while ((await stat(daemonLog)).size > HEADROOM && requests < 5000) {
      await daemon.client.start();
      requests++;
    }
    t.comment(`log rotated after ${requests} accepted actions in ${Date.now() - started} ms`);
    t.ok(requests < 5000, 'the log rotated');
    const one = await readFile(`${daemonLog}.1`, 'utf8');
    t.ok(one.startsWith(`${filler[0]}\n`), 'daemon.log.1 is the old daemon.log');
    t.match(one, /linuxkitd started/, 'with the lines of this start');
    t.ok(one.length <= ROTATE_BYTES, `daemon.log.1 is ${one.length} bytes, not over ${ROTATE_BYTES}`);
    t.equal(await readFile(`${daemonLog}.2`, 'utf8'), 'rotated file 1\n');
    t.equal(
      await readFile(`${daemonLog}.3`, 'utf8'),
      'rotated file 2\n',
      `the oldest (rotated file ${KEEP}) is gone`,
    );
    t.equal((await stat(daemonLog)).mode & 0o777, 0o600, 'the new log is 0600');

    // Something worth following after the rotation: a restart of the builder.
    const before = await daemon.client.status();
    const r = daemon.ctl(['restart', '--wait', '--timeout', '240']);
    t.equal(r.code, 0, r.stderr + r.stdout);
    const after = await daemon.client.status();
    t.not(after.vm.pid, before.vm.pid);
  },
);

t.test('logs -f printed every line the daemon wrote, once and in order, across the rotation', async (t) => {
  const written = [
    ...lines(await readFile(`${daemonLog}.1`, 'utf8')),
    ...lines(await readFile(daemonLog, 'utf8')),
  ];
  const last = written[written.length - 1];
  // The follower polls once a second.
  await until(() => follower.out.includes(last), 15_000, 'the follower to print the last line');
  t.equal(follower.proc.exitCode, null, 'logs -f is still following');
  const first = follower.out.slice(0, 3);
  const from = written.indexOf(first[2]) + 1;
  t.ok(from > 0, 'the follower began with the tail of the log');
  const expected = written.slice(from);
  t.comment(
    `logs -f: ${follower.out.length} lines printed, ${expected.length} written while following, ${lines(await readFile(daemonLog, 'utf8')).length} of them after the rotation`,
  );
  t.same(follower.out.slice(3), expected, 'exactly the written lines, in order, none twice');
  t.ok(
    follower.out.some((l) => l.includes('"msg":"stopping the VM"')),
    'including the restart after the rotation',
  );
});

t.test('events printed the restart in order: stopping, starting, running', async (t) => {
  const all = parsedEvents();
  t.equal(all[0]?.initial, true, 'the first line is the snapshot');
  const states = all.filter((e) => e.type === 'state' && e.initial !== true).map((e) => e.state);
  t.comment(`events: ${all.length} lines; states ${states.join(' → ')}`);
  const stopAt = states.lastIndexOf('stopping');
  t.ok(stopAt >= 0, 'a stopping event');
  t.same(
    states
      .slice(stopAt)
      .filter((s, i, a) => s !== a[i - 1])
      .slice(-3),
    ['stopping', 'starting', 'running'],
  );
  t.ok(
    all.some((e) => e.type === 'exit'),
    "the old VM's exit",
  );
  const human = ctlChild(['events']);
  // Generous: node alone can take a minute to start on a loaded machine.
  await until(() => human.out.length > 0, 180_000, 'the first human-readable event line');
  t.match(human.out[0], /^\S+\s+state\s+/, 'the text form: time, type, ...');
  human.proc.kill('SIGINT');
  t.equal(await human.exited, 0, 'Ctrl-C exits 0');
});

t.test('the daemon ends the stream when it stops: events exits 3', async (t) => {
  daemon.proc.kill('SIGTERM');
  t.equal((await daemon.exited).code, 0);
  t.equal(await events.exited, 3, 'linuxkitctl events: the daemon ended the stream');
  const states = parsedEvents()
    .filter((e) => e.type === 'state')
    .map((e) => e.state);
  t.comment(`the last state events before the stream ended: ${states.slice(-3).join(' → ')}`);
});
