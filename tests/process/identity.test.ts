// A pid is matched by executable, argv and start time before anyone trusts it.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { identitySource, isSameProcess, readProcessIdentity } from '../../daemon/process/identity.js';
import { parseProcCmdline, parseProcStat } from '../../daemon/process/proc-identity.js';
import { parsePsStatLine } from '../../daemon/process/ps-identity.js';

t.test('parseProcStat reads state and field 22 from a plain line', async (t) => {
  const line =
    '4242 (qemu-system-x86) S 1 4242 4242 0 -1 4194560 123 0 0 0 50 20 0 0 20 0 3 0 987654 1234567 890 ' +
    '18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n';
  t.same(parseProcStat(line), { pid: 4242, comm: 'qemu-system-x86', state: 'S', startTime: '987654' });
});

t.test('parseProcStat survives spaces and parentheses in comm', async (t) => {
  const line = '77 (a) b (c)) Z 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5555 0 0';
  t.same(parseProcStat(line), { pid: 77, comm: 'a) b (c)', state: 'Z', startTime: '5555' });
});

t.test('parseProcStat rejects text that is not a stat line', async (t) => {
  t.throws(() => parseProcStat('hello'), { message: /not a \/proc\/<pid>\/stat line: "hello"/ });
  t.throws(() => parseProcStat('1 (x) S 1 2'), { message: /not a \/proc\/<pid>\/stat line/ });
});

t.test('parseProcCmdline splits on NUL and keeps empty arguments', async (t) => {
  t.same(parseProcCmdline(Buffer.from('qemu\0-append\0\0-name\0a b,c\0')), [
    'qemu',
    '-append',
    '',
    '-name',
    'a b,c',
  ]);
  t.same(parseProcCmdline(''), []);
  t.same(parseProcCmdline('kthread-like'), ['kthread-like']);
});

t.test('parsePsStatLine reads ps stat, lstart (C locale, UTC) and comm (paths with spaces)', async (t) => {
  t.same(parsePsStatLine('Ss   Wed Nov 26 09:08:01 2025     /opt/homebrew/bin/qemu-system-aarch64'), {
    state: 'Ss',
    startTime: '2025-11-26T09:08:01Z',
    executable: '/opt/homebrew/bin/qemu-system-aarch64',
  });
  t.same(parsePsStatLine('Z    Mon Jan  5 07:00:00 2026     /Applications/My App/qemu  '), {
    state: 'Z',
    startTime: '2026-01-05T07:00:00Z',
    executable: '/Applications/My App/qemu',
  });
  // comm is argv[0] as exec'd on macOS: a bare name when QEMU was found on PATH.
  t.same(
    parsePsStatLine('S    Tue Dec  1 23:59:59 2026 qemu-system-aarch64').executable,
    'qemu-system-aarch64',
  );
});

t.test('parsePsStatLine refuses what an unpinned locale prints, naming the format it wants', async (t) => {
  const wants = /expected "STAT Www Mmm d hh:mm:ss yyyy COMM" \(ps run with TZ=UTC0 LC_ALL=C\)/;
  t.throws(() => parsePsStatLine('garbage'), { message: /unexpected ps output: "garbage"/ });
  // Apple's %c under de_DE and fr_FR.
  t.throws(() => parsePsStatLine('Ss   Mi 26 Nov 09:08:01 2025     /usr/bin/qemu'), { message: wants });
  t.throws(() => parsePsStatLine('Ss   mer. 26 nov. 09:08:01 2025     /usr/bin/qemu'), { message: wants });
  t.throws(() => parsePsStatLine('Ss   Wed Foo 26 09:08:01 2025     /usr/bin/qemu'), { message: wants });
});

t.test('identitySource: /proc on Linux, ps elsewhere, LINUXKIT_PROCESS_IDENTITY to choose', async (t) => {
  t.equal(identitySource('linux', {}), 'proc');
  t.equal(identitySource('darwin', {}), 'ps');
  t.equal(identitySource('linux', { LINUXKIT_PROCESS_IDENTITY: 'ps' }), 'ps');
  t.equal(identitySource('darwin', { LINUXKIT_PROCESS_IDENTITY: 'proc' }), 'proc');
  t.equal(identitySource('linux', { LINUXKIT_PROCESS_IDENTITY: '' }), 'proc');
  t.throws(() => identitySource('linux', { LINUXKIT_PROCESS_IDENTITY: 'lsof' }), {
    message: 'LINUXKIT_PROCESS_IDENTITY must be "ps" or "proc", got "lsof"',
  });
});

t.test('isSameProcess needs executable, argv and start time to match', async (t) => {
  const record = { executable: '/usr/bin/qemu', argv: ['qemu', '-name', 'x'], processStartTime: '100' };
  const same = { executable: '/usr/bin/qemu', argv: ['qemu', '-name', 'x'], startTime: '100' };
  t.ok(isSameProcess(record, same));
  t.notOk(isSameProcess(record, null), 'no process');
  t.notOk(isSameProcess(record, { ...same, startTime: '101' }), 'pid reused later');
  t.notOk(isSameProcess(record, { ...same, argv: ['qemu', '-name', 'y'] }), 'other argv');
  t.notOk(isSameProcess(record, { ...same, executable: '/usr/bin/sleep' }), 'other executable');
  t.ok(
    isSameProcess(record, { ...same, executable: '/usr/bin/qemu (deleted)' }),
    'binary upgraded underneath',
  );
  t.ok(isSameProcess(record, { ...same, argv: ['qemu -name x'] }), 'ps gives one joined string');
});

t.test('readProcessIdentity describes this very process', async (t) => {
  const id = await readProcessIdentity(process.pid);
  t.ok(id);
  t.equal(id!.executable, await readlink('/proc/self/exe'));
  t.same(id!.argv, parseProcCmdline(await readFile('/proc/self/cmdline')));
  t.equal(id!.argv[0], process.argv0);
  t.match(id!.startTime, /^\d+$/);
  t.same(await readProcessIdentity(process.pid), id, 'stable across reads');
});

t.test('readProcessIdentity returns null for a pid that does not exist', async (t) => {
  const child = spawn('true');
  const pid = child.pid!;
  await new Promise((r) => child.once('exit', r));
  t.equal(await readProcessIdentity(pid), null);
  await t.rejects(readProcessIdentity(0), { message: /pid must be a positive integer, got 0/ });
});

t.test('readProcessIdentity gives argv exactly and treats a zombie as gone', async (t) => {
  // perl forks a child that exits at once and then never reaps it: the child becomes a zombie.
  // (A shell may reap it itself before exec'ing, when the machine is loaded.)
  const parent = spawn(
    'perl',
    ['-e', '$|=1; my $p = fork(); if (!$p) { exit 0 } print "$p\n"; exec "sleep", "30"'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  t.teardown(() => parent.kill('SIGKILL'));
  const zombiePid = Number(
    await new Promise<string>((r) => parent.stdout!.once('data', (d) => r(String(d)))),
  );
  const parentId = await readProcessIdentity(parent.pid!);
  t.same(parentId?.argv, ['sleep', '30'], 'argv after exec');
  t.match(parentId?.executable, /\/sleep$/);
  const state = async () => parseProcStat(await readFile(`/proc/${zombiePid}/stat`, 'utf8')).state;
  for (let i = 0; i < 100 && (await state()) !== 'Z'; i++) await sleep(20);
  t.equal(await state(), 'Z', 'the child really is a zombie');
  t.equal(await readProcessIdentity(zombiePid), null, 'a zombie is not alive');
});
