// The console ring reader (one look at hyperkit's 64 KiB ring) and the follower that copies it
// into the boot's console log. The ring is written here exactly as hyperkit's ringwrite() does:
// byte n of the console at ring[n % 65536], the offset stored nowhere.
import t from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CONSOLE_RING_SIZE,
  readConsoleRing,
  reconstructConsoleRing,
  UNORDERED_NOTE,
} from '../../../daemon/backends/hyperkit/console-ring.js';
import { ConsoleRingFollower, ringDelta } from '../../../daemon/backends/hyperkit/console-ring-follower.js';
import { tempDir } from '../../helpers/env.js';

/** A console as hyperkit would leave it in the ring after printing `text`. */
class Ring {
  readonly buf = Buffer.alloc(CONSOLE_RING_SIZE);
  n = 0;
  write(text: string | Buffer): void {
    for (const b of Buffer.from(text)) this.buf[this.n++ % CONSOLE_RING_SIZE] = b;
  }
}

/** A kernel-style line with a printk time stamp. */
const stamped = (i: number, body = `message number ${i}`) =>
  `[${String(Math.floor(i / 1000)).padStart(5, ' ')}.${String((i % 1000) * 1000).padStart(6, '0')}] ${body}\r\n`;

t.test('a ring that never wrapped reads exactly, up to its first unwritten byte', async (t) => {
  const r = new Ring();
  r.write('first line\r\nsecond line\r\nno newline yet');
  const got = reconstructConsoleRing(r.buf);
  t.same(got, { text: 'first line\r\nsecond line\r\nno newline yet', wrapped: false, writeOffset: r.n });
  t.same(reconstructConsoleRing(Buffer.alloc(CONSOLE_RING_SIZE)), {
    text: '',
    wrapped: false,
    writeOffset: 0,
  });
});

t.test('NUL bytes the guest printed are dropped, and do not end the text early', async (t) => {
  const r = new Ring();
  r.write('a\0b\r\nc\r\n');
  t.equal(reconstructConsoleRing(r.buf).text, 'ab\r\nc\r\n');
});

t.test('a wrapped ring of time-stamped lines is put back in order, the torn line dropped', async (t) => {
  // Many write offsets: wherever the seam falls, the newest lines come last and whole.
  for (const total of [700, 1000, 1234, 2500, 4097]) {
    const r = new Ring();
    const lines: string[] = [];
    for (let i = 0; i < total; i++) {
      const line = stamped(i, `message number ${i} ${'x'.repeat(i % 37)}`);
      lines.push(line.replace('\r\n', ''));
      r.write(line);
    }
    if (r.n <= CONSOLE_RING_SIZE) continue;
    const got = reconstructConsoleRing(r.buf);
    t.equal(got.wrapped, true);
    const text = got.text
      .replace(/\r/g, '')
      .split('\n')
      .filter((l) => l !== '');
    t.same(text.slice(-50), lines.slice(-50), `${total} lines: the last 50 are the newest, in order`);
    t.ok(
      lines.includes(text[0]),
      `${total} lines: the first line shown is whole (${JSON.stringify(text[0].slice(0, 30))})`,
    );
    t.ok(text.length > 500, 'most of the 64 KiB is recovered');
  }
});

t.test('a seam that falls exactly on a line start loses nothing', async (t) => {
  // Fixed-size lines that divide 65536: after wrapping, the write offset is a line start.
  const r = new Ring();
  const body = (i: number) => `m${String(i).padStart(12, '0')}`;
  const lines: string[] = [];
  let i = 0;
  while (r.n < CONSOLE_RING_SIZE * 2 + 64 * 10) {
    const line = `[${String(i).padStart(5, ' ')}.000000] ${body(i)}`.padEnd(62, '.') + '\r\n';
    t.equal(line.length, 64);
    lines.push(line.replace('\r\n', ''));
    r.write(line);
    i++;
  }
  const text = reconstructConsoleRing(r.buf)
    .text.replace(/\r/g, '')
    .split('\n')
    .filter((l) => l !== '');
  t.equal(text.length, CONSOLE_RING_SIZE / 64, 'every line in the ring, none torn');
  t.same(text, lines.slice(-text.length));
});

t.test('a wrapped ring without time stamps is shown in ring order under a note', async (t) => {
  const dir = await tempDir('ring');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const r = new Ring();
  for (let i = 0; i < 5000; i++) r.write(`plain line ${i}\r\n`);
  const path = join(dir, 'console-ring');
  await writeFile(path, r.buf);
  const got = await readConsoleRing(path, 3);
  t.equal(got.length, 3);
  t.equal(got[0], UNORDERED_NOTE);
  t.equal(reconstructConsoleRing(r.buf).writeOffset, null);
});

t.test('readConsoleRing returns the last n lines of a file, and nothing for a missing one', async (t) => {
  const dir = await tempDir('ring');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const r = new Ring();
  for (let i = 0; i < 3000; i++) r.write(stamped(i));
  const path = join(dir, 'console-ring');
  await writeFile(path, r.buf);
  t.same(await readConsoleRing(path, 2), [
    '[    2.998000] message number 2998',
    '[    2.999000] message number 2999',
  ]);
  t.same(await readConsoleRing(path, 0), []);
  t.same(await readConsoleRing(join(dir, 'absent'), 10), []);
  // A ring hyperkit has just created (shorter than 64 KiB) reads as empty.
  await writeFile(path, 'boot\r\n');
  t.same(await readConsoleRing(path, 10), ['boot']);
  await t.rejects(readConsoleRing(path, -1), { message: 'lines must be an integer >= 0, got -1' });
});

t.test(
  'ringDelta: new bytes run from the known offset to the last changed byte, across the end',
  async (t) => {
    const prev = Buffer.alloc(16, 'a');
    const cur = Buffer.from(prev);
    cur.write('XYZ', 14, 'latin1'); // X at 14, Y at 15; Z is dropped by write's bounds
    cur[0] = 'W'.charCodeAt(0);
    const d = ringDelta(prev, cur, 14);
    t.equal(d.bytes.toString('latin1'), 'XYW');
    t.equal(d.pos, 1);
    t.same(ringDelta(prev, prev, 5), { bytes: Buffer.alloc(0), pos: 5 }, 'nothing new');
    t.throws(() => ringDelta(Buffer.alloc(4), Buffer.alloc(8), 0), {
      message: 'ring snapshots differ in size: 4 and 8',
    });
  },
);

t.test(
  'ringDelta: with the offset unknown, the changed arc is found outside the longest unchanged stretch',
  async (t) => {
    const prev = Buffer.alloc(32, '.');
    const cur = Buffer.from(prev);
    // New bytes at 30, 31, 0, 1, 2: they wrap.
    for (const [i, c] of [
      [30, 'a'],
      [31, 'b'],
      [0, 'c'],
      [1, 'd'],
      [2, 'e'],
    ] as const)
      cur[i] = c.charCodeAt(0);
    t.same(ringDelta(prev, cur, null), { bytes: Buffer.from('abcde'), pos: 3 });
    t.same(ringDelta(prev, prev, null), { bytes: Buffer.alloc(0), pos: null });
  },
);

t.test('the follower copies a console many times the ring size into the log, byte for byte', async (t) => {
  const dir = await tempDir('ring');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ringPath = join(dir, 'console-ring');
  const logPath = join(dir, 'console.log');
  const r = new Ring();
  await writeFile(ringPath, r.buf);
  const follower = new ConsoleRingFollower(ringPath, logPath, { intervalMs: 60_000 });
  await follower.start();
  let all = '';
  // Chunks below the ring size between looks, some ending mid-line, one with a UTF-8 character.
  for (let i = 0; i < 40; i++) {
    const chunk = `chunk ${i} ${'é'.repeat(i)} ${'z'.repeat((i * 977) % 20000)}\r\n`.slice(
      0,
      i % 3 === 0 ? undefined : -3,
    );
    all += chunk;
    r.write(chunk);
    await writeFile(ringPath, r.buf);
    await follower.poll();
  }
  t.ok(r.n > CONSOLE_RING_SIZE * 5, `the ring wrapped (${r.n} bytes written)`);
  await follower.stop();
  t.equal(await readFile(logPath, 'utf8'), all);
});

t.test('an adopted follower copies only what comes after it started', async (t) => {
  const dir = await tempDir('ring');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ringPath = join(dir, 'console-ring');
  const logPath = join(dir, 'console.log');
  for (const before of [100, 70_000]) {
    const r = new Ring();
    for (let i = 0; r.n < before; i++) r.write(`old line ${i}\r\n`);
    await writeFile(ringPath, r.buf);
    await rm(logPath, { force: true });
    const follower = new ConsoleRingFollower(ringPath, logPath, { intervalMs: 60_000, adopted: true });
    await follower.start();
    r.write('new one\r\n');
    await writeFile(ringPath, r.buf);
    await follower.poll();
    r.write('new two\r\n');
    await writeFile(ringPath, r.buf);
    await follower.stop();
    t.equal(
      await readFile(logPath, 'utf8'),
      'new one\r\nnew two\r\n',
      `after ${before} bytes already in the ring`,
    );
  }
});
