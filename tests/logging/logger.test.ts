import t from 'tap';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createDaemonLogger, scrubSecrets } from '../../daemon/logging/logger.js';
import { RotatingFile, tailRotatedLog } from '../../daemon/logging/rotating-file.js';
import { tempDir } from '../helpers/env.js';

const PRIVATE_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';

t.test('private keys never reach the log file, as fields or inside messages', async (t) => {
  const dir = await tempDir('log');
  const file = join(dir, 'daemon.log');
  const log = createDaemonLogger({ file, foreground: false });
  log.info({ privateKey: PRIVATE_KEY, target: { privateKey: 'secret', host: '127.0.0.1' } }, 'connecting');
  log.warn(`guest stderr: ${PRIVATE_KEY}`);
  log.flush();
  await new Promise((r) => setTimeout(r, 50));
  const text = await readFile(file, 'utf8');
  t.notMatch(text, /b3BlbnNzaC1rZXktdjEAAAAA/);
  t.notMatch(text, /secret/);
  t.match(text, /"host":"127.0.0.1"/);
  t.match(text, /\[private key redacted\]/);
  t.equal(text.trim().split('\n').length, 2, 'both lines are JSON lines');
  for (const line of text.trim().split('\n')) t.ok(JSON.parse(line).time, 'each line has an ISO time');
});

t.test('scrubSecrets leaves ordinary text alone', async (t) => {
  t.equal(scrubSecrets('nix-store (Nix) 2.8.0'), 'nix-store (Nix) 2.8.0');
});

t.test('the log file rotates by size and keeps a bounded number of old files', async (t) => {
  const dir = await tempDir('rot');
  const path = join(dir, 'daemon.log');
  const file = new RotatingFile({ path, maxBytes: 100, keep: 2 });
  for (let i = 0; i < 10; i++) file.write(`line ${i} ${'x'.repeat(40)}\n`);
  await new Promise<void>((r) => file.end(r));
  const names = (await readdir(dir)).sort();
  t.same(names, ['daemon.log', 'daemon.log.1', 'daemon.log.2']);
  t.match(await readFile(path, 'utf8'), /line 9/);
  t.match(await readFile(`${path}.1`, 'utf8'), /line 7/);
});

t.test('the tail of a rotated log reaches into daemon.log.1 for what daemon.log lacks', async (t) => {
  const dir = await tempDir('rot');
  const path = join(dir, 'daemon.log');
  const file = new RotatingFile({ path, maxBytes: 100, keep: 2 });
  for (let i = 0; i < 5; i++) file.write(`line ${i} ${'x'.repeat(40)}\n`);
  await new Promise<void>((r) => file.end(r));
  // 46 bytes a line, 100 bytes a file: lines 0-1, 2-3 and 4 in daemon.log.2, .1 and daemon.log.
  t.same(
    (await tailRotatedLog(path, 3)).map((l) => l.split(' ')[1]),
    ['2', '3', '4'],
    'what a follower polled before the rotation lines up',
  );
  t.same(
    (await tailRotatedLog(path, 1)).map((l) => l.split(' ')[1]),
    ['4'],
    'the current file alone when it has enough',
  );
  t.same(
    (await tailRotatedLog(path, 10)).map((l) => l.split(' ')[1]),
    ['2', '3', '4'],
    'one rotated file at most',
  );
  t.same(await tailRotatedLog(join(dir, 'missing.log'), 5), []);
});
