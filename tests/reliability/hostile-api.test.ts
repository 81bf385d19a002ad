// Who can reach the daemon, and what hostile input does to it, against a real linuxkitd with a
// real VM (tcg): the socket's mode tested with a real second user, the SSH forward's bind
// address read from the socket table, and well over a thousand malformed requests over the real
// Unix socket while GET /v1/status keeps being asked. The VM must come out of it untouched.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, linkSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { DaemonStatus } from '../../daemon/controller.js';
import { requireTool, tempDir } from '../helpers/env.js';
import { ensureSystemUser, readableCopy, runAsUser } from '../helpers/other-user.js';
import { ctlMain, isHealthy, startTestDaemon } from '../helpers/daemon-process.js';
import {
  FUZZ_CLASSES,
  fuzzCases,
  judge,
  runPool,
  sendCase,
  type FuzzCase,
  type Outcome,
} from './fuzz-requests.js';
import { FAST_TEST_CONFIG, assertNoKeyMaterial, killQemus, qemuPidsFor, writeConfig } from './vm-helpers.js';

requireTool('qemu-system-x86_64');
requireTool('ss');
requireTool('runuser');
requireTool('useradd');

const SEED = 0x5eed_2025;
const PER_CLASS = 120; // 9 classes: 1080 requests at 32 connections at a time
const BURST = 400; // then this many more, all connections opened at once
const OTHER_USER = 'linuxkit-fuzz';

const stateDir = await tempDir('hostile');
await writeConfig(stateDir, FAST_TEST_CONFIG);
const daemon = await startTestDaemon({ stateDir });
t.teardown(() => {
  daemon.proc.kill('SIGKILL');
  killQemus(stateDir);
});
const booted = await daemon.waitFor(isHealthy, 180_000, 'the first boot');
const vmPid = booted.vm.pid!;

/** Connects to a Unix socket as another user (node built-ins only); prints CONNECTED or the error code. */
function connectAs(user: string, socketPath: string): string {
  const script =
    "const s=require('net').connect(process.argv[1]);s.on('connect',()=>{console.log('CONNECTED');s.destroy()});s.on('error',(e)=>console.log(e.code))";
  const r = runAsUser(user, [process.execPath, '-e', script, socketPath]);
  return (r.stdout || r.stderr).trim();
}

t.test('the control socket is 0600 and another uid gets EACCES', async (t) => {
  const st = statSync(daemon.socket);
  t.ok(st.isSocket(), 'a socket');
  t.equal((st.mode & 0o777).toString(8), '600', 'mode 0600');
  t.equal(st.uid, process.getuid!(), "owned by the daemon's user");
  t.equal((statSync(stateDir).mode & 0o777).toString(8), '700', 'in a 0700 state directory');

  const uid = ensureSystemUser(OTHER_USER);
  t.not(uid, process.getuid!(), `${OTHER_USER} is uid ${uid}`);
  t.equal(
    connectAs(OTHER_USER, daemon.socket),
    'EACCES',
    'through its own path (the 0700 directory stops it first)',
  );

  // The socket's own mode, without the directory's help: a hard link in a directory anyone may
  // enter reaches the same socket inode.
  const open = await tempDir('sock-link');
  chmodSync(open, 0o755);
  const link = join(open, 'daemon.sock');
  linkSync(daemon.socket, link);
  t.equal(
    connectAs(OTHER_USER, link),
    'EACCES',
    'through a link in an open directory: the 0600 mode refuses it',
  );
  // Controls: the same user reaches a 0666 socket next to it, and the daemon's user the link.
  const control = createServer().listen(join(open, 'control.sock'));
  await new Promise((r) => control.once('listening', r));
  chmodSync(join(open, 'control.sock'), 0o666);
  t.equal(
    connectAs(OTHER_USER, join(open, 'control.sock')),
    'CONNECTED',
    `control: ${OTHER_USER} can connect to a 0666 socket there`,
  );
  control.close();
  const asOwner = spawnSync(process.execPath, [ctlMain, '--socket', link, 'health'], { encoding: 'utf8' });
  t.equal(asOwner.status, 0, "control: the daemon's user reaches the daemon through the link");
  // The CLI runs as the other user from a copy it can read: the checkout may be under a 0700 home.
  const ctlCopy = await readableCopy(ctlMain);
  t.teardown(() => rm(ctlCopy.dir, { recursive: true, force: true }));
  const cli = runAsUser(
    OTHER_USER,
    [process.execPath, ctlCopy.entry, '--socket', link, 'status'],
    ctlCopy.dir,
  );
  t.equal(cli.status, 3, `linuxkitctl as another user exits 3 (stderr: ${cli.stderr.trim()})`);
  t.match(cli.stderr, /permission denied \(the socket is 0600: run as the user linuxkitd runs as\)/);
  t.comment(
    `socket ${daemon.socket}: mode 0600, uid ${st.uid}; as ${OTHER_USER} (uid ${uid}): EACCES by path and through a link`,
  );
});

t.test("the VM's SSH port listens on 127.0.0.1 only, and the daemon on no TCP port at all", async (t) => {
  const table = execFileSync('ss', ['-Htlnp'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const onPort = table.filter((l) => new RegExp(`:${daemon.sshPort}\\s`).test(l));
  t.ok(onPort.length >= 1, `${onPort.length} listener(s) on port ${daemon.sshPort}`);
  for (const l of onPort) {
    const local = l.trim().split(/\s+/)[3];
    t.equal(local, `127.0.0.1:${daemon.sshPort}`, `bound to loopback: ${l.trim()}`);
    t.match(l, new RegExp(`pid=${vmPid},`), 'by the VM');
  }
  t.same(
    table.filter((l) => l.includes(`pid=${daemon.proc.pid},`)),
    [],
    'linuxkitd has no TCP listener: the API is the Unix socket only',
  );
  t.comment(`ss -Htlnp: ${onPort.map((l) => l.trim().split(/\s+/)[3]).join(', ')} (QEMU pid ${vmPid})`);
});

t.test(
  `${FUZZ_CLASSES.length * PER_CLASS + BURST} malformed requests: each a JSON 4xx or a close; status answers throughout; the VM untouched`,
  async (t) => {
    const before = await daemon.client.status();
    const polls = { ok: 0, bad: [] as string[], maxMs: 0 };
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const at = Date.now();
        try {
          const s: DaemonStatus = await daemon.client.status();
          const ms = Date.now() - at;
          polls.maxMs = Math.max(polls.maxMs, ms);
          if (s.state === 'running' && s.healthy && s.vm.pid === vmPid && s.daemon.pid === before.daemon.pid)
            polls.ok++;
          else polls.bad.push(`state ${s.state} healthy ${s.healthy} pid ${s.vm.pid}`);
        } catch (err) {
          polls.bad.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const started = Date.now();
    const cases = fuzzCases(SEED, PER_CLASS);
    const paced = await runPool(cases, 32, async (c) => ({ c, o: await sendCase(daemon.socket, c) }));
    const pacedMs = Date.now() - started;
    const burstCases = fuzzCases(SEED + 1, Math.ceil(BURST / FUZZ_CLASSES.length)).slice(0, BURST);
    const burstStarted = Date.now();
    const burst = await Promise.all(
      burstCases.map(async (c) => ({ c, o: await sendCase(daemon.socket, c, 30_000) })),
    );
    const burstMs = Date.now() - burstStarted;
    polling = false;
    await poller;

    const tally = new Map<string, Map<string, number>>();
    const failures: string[] = [];
    const count = (c: FuzzCase, o: Outcome) => {
      const j = judge(c, o);
      const row = tally.get(c.cls) ?? new Map<string, number>();
      row.set(j.bucket, (row.get(j.bucket) ?? 0) + 1);
      tally.set(c.cls, row);
      if (!j.ok) failures.push(`${c.cls}: ${c.label}: ${j.why}`);
    };
    for (const { c, o } of [...paced, ...burst]) count(c, o);
    const total = paced.length + burst.length;

    t.ok(total >= 1000, `${total} requests sent`);
    t.same(
      failures.slice(0, 30),
      [],
      `every answer a JSON 4xx error or a closed connection (${failures.length} not)`,
    );
    // How many polls fit in the run depends on the machine's speed; that they were answered, and
    // all correctly, does not. The count is reported below.
    t.ok(polls.ok >= 1, `GET /v1/status answered during the run (${polls.ok} times)`);
    t.same(polls.bad, [], 'and every answer showed the same healthy VM');

    const after = await daemon.client.status();
    t.equal(after.vm.pid, vmPid, 'same VM pid');
    t.ok(isHealthy(after), 'still healthy');
    t.equal(after.restarts, before.restarts, 'no restart');
    t.equal(after.desired, 'running', 'nothing asked it to stop');
    t.equal(after.daemon.pid, before.daemon.pid, 'the same daemon');
    t.same(qemuPidsFor(stateDir), [vmPid]);
    const log = await readFile(join(stateDir, 'log', 'daemon.log'), 'utf8');
    t.notMatch(log, /API action accepted/, 'no start, stop or restart was ever accepted');
    t.notMatch(log, /API request failed/, 'no request made the daemon fail (500)');

    for (const cls of FUZZ_CLASSES) {
      const row = [...(tally.get(cls) ?? new Map<string, number>())]
        .sort()
        .map(([k, n]) => `${k === 'closed' ? 'closed' : `HTTP ${k}`} ×${n}`);
      t.comment(`${cls}: ${row.join(', ')}`);
    }
    t.comment(
      `${total} hostile requests (${paced.length} at 32 connections in ${pacedMs} ms, ${burst.length} opened at once in ${burstMs} ms); ` +
        `${failures.length} answered otherwise; GET /v1/status answered ${polls.ok}/${polls.ok + polls.bad.length} correctly, slowest ${polls.maxMs} ms`,
    );
  },
);

t.test('at the end: SIGTERM stops it all; no key material in any log', async (t) => {
  daemon.proc.kill('SIGTERM');
  t.equal((await daemon.exited).code, 0);
  t.same(qemuPidsFor(stateDir), []);
  await assertNoKeyMaterial(t, stateDir);
});
