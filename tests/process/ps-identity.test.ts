// The macOS process identity (the ps reader that adoption uses there), run for real on Linux:
// procps `ps` accepts the same fields, and a stand-in prints them the way Apple's ps does
// (tests/fixtures/ps-standin/ps.mjs). Whatever the daemon's TZ and LANG, the identity must be one
// and the same, and it must describe the process the /proc reader sees.
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isSameProcess, readProcessIdentity } from '../../daemon/process/identity.js';
import { parseProcStat, readProcIdentity } from '../../daemon/process/proc-identity.js';
import { parsePsStatLine, readPsIdentity } from '../../daemon/process/ps-identity.js';
import { repoRoot, requireTool } from '../helpers/env.js';

requireTool('ps');
const appleLikePs = join(repoRoot, 'tests', 'fixtures', 'ps-standin', 'ps.mjs');

/** The environments a daemon may run under: a laptop that travelled, a German or French Mac. */
const environments: Array<Record<string, string | undefined>> = [
  { TZ: 'UTC', LANG: 'C', LC_ALL: undefined },
  { TZ: 'Asia/Kolkata', LANG: 'de_DE.UTF-8', LC_ALL: undefined },
  { TZ: 'America/St_Johns', LANG: 'C', LC_ALL: 'fr_FR.UTF-8' },
  { TZ: 'Pacific/Chatham', LANG: 'de_DE.UTF-8', LC_ALL: undefined, LC_TIME: 'fr_FR.UTF-8' },
];

/** Runs `fn` with the daemon's own environment changed as given (what ps inherits). */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) {
      if (value === undefined) delete process.env[k];
      else process.env[k] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

function sleeper(t: { teardown(fn: () => unknown): void }): ChildProcess {
  // A bare name found on PATH, as the daemon spawns QEMU.
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  return child;
}

/** /proc's start time as an instant: boot time + ticks / CLK_TCK, to the second. */
async function procStartInstant(pid: number): Promise<{ iso: string; ms: number }> {
  const btime = Number(/^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))![1]);
  const ticks = Number(parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8')).startTime);
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const ms = (btime + Math.floor(ticks / hz)) * 1000;
  return { iso: new Date(ms).toISOString().replace('.000Z', 'Z'), ms };
}

t.test('procps ps: one identity under every TZ and LANG, matching the /proc reader', async (t) => {
  const child = sleeper(t);
  const pid = child.pid!;
  const proc = await readProcIdentity(pid);
  t.ok(proc, 'the /proc reader sees the process');

  const seen = [];
  for (const env of environments) seen.push(await withEnv(env, () => readPsIdentity(pid)));
  for (let i = 1; i < seen.length; i++)
    t.same(seen[i], seen[0], `same identity under ${JSON.stringify(environments[i])}`);
  const ps = seen[0]!;

  t.same(ps.argv, [proc!.argv.join(' ')], 'argv: the command line /proc gives, joined');
  const procComm = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8')).comm;
  t.equal(ps.executable, procComm, "executable: procps's comm is the kernel's task name");
  t.ok(basename(proc!.executable).startsWith(ps.executable), `${ps.executable} names ${proc!.executable}`);
  const start = await procStartInstant(pid);
  const apartMs = Math.abs(Date.parse(ps.startTime) - start.ms);
  t.comment(`ps lstart ${ps.startTime}, /proc start ${start.iso}: ${apartMs} ms apart`);
  t.ok(apartMs <= 1000, 'start time: the instant /proc gives, to the second');
  t.match(ps.startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  // What the record holds (written at start) matches what a later daemon reads in another zone.
  const record = { executable: ps.executable, argv: ps.argv, processStartTime: ps.startTime };
  t.ok(await withEnv(environments[1], async () => isSameProcess(record, await readPsIdentity(pid))));
});

t.test('without the pin procps prints another start time after a time zone change', async (t) => {
  const child = sleeper(t);
  const lstart = (tz: string) =>
    execFileSync('ps', ['-o', 'lstart=', '-p', String(child.pid)], {
      env: { ...process.env, TZ: tz },
      encoding: 'utf8',
    }).trim();
  t.not(
    lstart('Asia/Kolkata'),
    lstart('UTC0'),
    'the raw lstart depends on TZ: the pin is what keeps the identity',
  );
});

t.test(
  "Apple's ps (stand-in): unpinned, a German Mac cannot parse and a travelled one cannot adopt",
  async (t) => {
    const child = sleeper(t);
    const raw = (env: Record<string, string | undefined>) =>
      execFileSync(appleLikePs, ['-o', 'stat=', '-o', 'lstart=', '-o', 'comm=', '-p', String(child.pid)], {
        env: { ...process.env, LC_ALL: undefined, LC_TIME: undefined, ...env },
        encoding: 'utf8',
      }).trim();
    t.throws(() => parsePsStatLine(raw({ TZ: 'UTC0', LANG: 'de_DE.UTF-8' })), {
      message: /unexpected ps output: "S +(Mo|Di|Mi|Do|Fr|Sa|So) /, // a German weekday, whichever day it is
    });
    const home = parsePsStatLine(raw({ TZ: 'UTC0', LANG: 'C' }));
    const away = parsePsStatLine(raw({ TZ: 'Asia/Kolkata', LANG: 'C' }));
    t.not(away.startTime, home.startTime, 'the same process, another start time');
  },
);

t.test(
  "Apple's ps (stand-in) through the reader: pinned, one identity everywhere, argv[0] as comm",
  async (t) => {
    const child = sleeper(t);
    const pid = child.pid!;
    const seen = [];
    for (const env of environments)
      seen.push(await withEnv(env, () => readPsIdentity(pid, { ps: appleLikePs })));
    for (let i = 1; i < seen.length; i++)
      t.same(seen[i], seen[0], `same identity under ${JSON.stringify(environments[i])}`);
    const procps = await readPsIdentity(pid);
    t.same(
      seen[0],
      { ...procps, executable: 'sleep' },
      "the procps reading, with Apple's comm: argv[0] as exec'd",
    );
  },
);

t.test('the ps reader: a pid that is gone or a zombie is no process', async (t) => {
  const done = spawn('true');
  await new Promise((r) => done.once('exit', r));
  t.equal(await readPsIdentity(done.pid!), null, 'gone (procps)');
  t.equal(await readPsIdentity(done.pid!, { ps: appleLikePs }), null, 'gone (stand-in)');

  const parent = spawn(
    'perl',
    ['-e', '$|=1; my $p = fork(); if (!$p) { exit 0 } print "$p\\n"; exec "sleep", "30"'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  t.teardown(() => parent.kill('SIGKILL'));
  const zombie = Number(await new Promise<string>((r) => parent.stdout!.once('data', (d) => r(String(d)))));
  for (let i = 0; i < 100 && (await readProcIdentity(zombie)) !== null; i++)
    await new Promise((r) => setTimeout(r, 20));
  t.equal(await readPsIdentity(zombie), null, 'a zombie (procps stat Z)');
});

t.test('LINUXKIT_PROCESS_IDENTITY=ps makes readProcessIdentity use ps on Linux', async (t) => {
  const child = sleeper(t);
  const viaPs = await withEnv({ LINUXKIT_PROCESS_IDENTITY: 'ps' }, () => readProcessIdentity(child.pid!));
  t.same(viaPs, await readPsIdentity(child.pid!));
  t.match((await readProcessIdentity(child.pid!))?.startTime, /^\d+$/, 'unset: /proc ticks');
});
