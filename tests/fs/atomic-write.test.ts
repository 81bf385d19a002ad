import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic, writeJsonAtomic } from '../../daemon/fs/atomic-write.js';

const modeOf = async (p: string) => (await fs.stat(p)).mode & 0o7777;

t.test('writes a new file with the mode a plain write would get', async (t) => {
  const dir = t.testdir({});
  const target = path.join(dir, 'vm.json');
  await writeFileAtomic(target, 'hello');
  t.equal(await fs.readFile(target, 'utf8'), 'hello');
  await fs.writeFile(path.join(dir, 'plain'), 'x');
  t.equal(await modeOf(target), await modeOf(path.join(dir, 'plain')));
});

t.test('replaces the content and keeps the existing mode when none is given', async (t) => {
  const dir = t.testdir({ 'desired.json': 'old content' });
  const target = path.join(dir, 'desired.json');
  await fs.chmod(target, 0o600);
  await writeFileAtomic(target, Buffer.from('new'));
  t.equal(await fs.readFile(target, 'utf8'), 'new');
  t.equal(await modeOf(target), 0o600);
});

t.test('an explicit mode is applied exactly, past the umask', async (t) => {
  const dir = t.testdir({ f: 'x' });
  const target = path.join(dir, 'f');
  await writeFileAtomic(target, 'y', { mode: 0o666 });
  t.equal(await modeOf(target), 0o666);
  await writeFileAtomic(target, 'z', { mode: 0o640 });
  t.equal(await modeOf(target), 0o640);
});

t.test('leaves no temp file behind after success', async (t) => {
  const dir = t.testdir({});
  await writeFileAtomic(path.join(dir, 'a'), '1');
  await writeFileAtomic(path.join(dir, 'a'), '2');
  t.same(await fs.readdir(dir), ['a']);
});

t.test('a very long file name still fits its temp name', async (t) => {
  const dir = t.testdir({});
  const target = path.join(dir, 'n'.repeat(250));
  await writeFileAtomic(target, 'ok');
  t.equal(await fs.readFile(target, 'utf8'), 'ok');
  t.same(await fs.readdir(dir), ['n'.repeat(250)]);
});

t.test('a failing rename (target is a directory) removes the temp file and keeps the target', async (t) => {
  const dir = t.testdir({ 'config.json': { inside: 'kept' } });
  const target = path.join(dir, 'config.json');
  await t.rejects(writeFileAtomic(target, '{}'), { code: 'EISDIR' });
  t.same(await fs.readdir(dir), ['config.json']);
  t.equal(await fs.readFile(path.join(target, 'inside'), 'utf8'), 'kept');
});

t.test('a missing directory fails with ENOENT naming the path and creates nothing', async (t) => {
  const dir = t.testdir({});
  const target = path.join(dir, 'nope', 'vm.json');
  await t.rejects(writeFileAtomic(target, 'x'), { code: 'ENOENT', message: /nope/ });
  t.same(await fs.readdir(dir), []);
});

t.test(
  'a write failing half-way (file size limit, which binds root too) keeps the old file intact',
  async (t) => {
    const dir = t.testdir({ 'vm.json': 'old content' });
    const target = path.join(dir, 'vm.json');
    const moduleUrl = pathToFileURL(path.resolve('daemon/fs/atomic-write.ts')).href;
    const script = `
    import { writeFileAtomic } from ${JSON.stringify(moduleUrl)};
    try { await writeFileAtomic(process.argv[1], Buffer.alloc(1 << 20, 120)); console.log('wrote'); }
    catch (e) { console.log('failed ' + e.code); }`;
    // Keep only the TypeScript loader from tap's flags so the child can import the .ts module.
    // tap's process tracker (NODE_OPTIONS) writes a report at exit, which the size limit would
    // kill, so the child runs without it.
    const loader = process.execArgv.filter((a) => a.includes('typescript'));
    const child = spawn(
      'sh',
      [
        '-c',
        'unset NODE_OPTIONS; ulimit -f 16 && exec "$@"',
        'sh',
        process.execPath,
        ...loader,
        '--input-type=module',
        '-e',
        script,
        target,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exit = await new Promise((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    t.same(exit, { code: 0, signal: null });
    t.equal(out.trim(), 'failed EFBIG');
    t.equal(await fs.readFile(target, 'utf8'), 'old content');
    t.same(await fs.readdir(dir), ['vm.json']);
  },
);

t.test('exclusive never replaces an existing file', async (t) => {
  const dir = t.testdir({ 'config.json': 'mine' });
  const target = path.join(dir, 'config.json');
  await t.rejects(writeFileAtomic(target, 'theirs', { exclusive: true }), { code: 'EEXIST' });
  t.equal(await fs.readFile(target, 'utf8'), 'mine');
  t.same(await fs.readdir(dir), ['config.json']);

  const fresh = path.join(dir, 'new.json');
  await writeFileAtomic(fresh, 'first', { exclusive: true, mode: 0o644 });
  t.equal(await fs.readFile(fresh, 'utf8'), 'first');
  t.equal(await modeOf(fresh), 0o644);
  t.same((await fs.readdir(dir)).sort(), ['config.json', 'new.json']);
});

t.test('concurrent writers each leave a whole file, never a mix', async (t) => {
  const dir = t.testdir({});
  const target = path.join(dir, 'vm.json');
  const contents = Array.from({ length: 20 }, (_, i) => String(i).repeat(10_000));
  await Promise.all(contents.map((c) => writeFileAtomic(target, c)));
  t.ok(contents.includes(await fs.readFile(target, 'utf8')));
  t.same(await fs.readdir(dir), ['vm.json']);
});

t.test('a symlink at the target is replaced, not followed', async (t) => {
  const dir = t.testdir({ 'real.json': 'untouched' });
  const link = path.join(dir, 'link.json');
  await fs.symlink(path.join(dir, 'real.json'), link);
  await writeFileAtomic(link, 'new');
  t.ok((await fs.lstat(link)).isFile());
  t.equal(await fs.readFile(link, 'utf8'), 'new');
  t.equal(await fs.readFile(path.join(dir, 'real.json'), 'utf8'), 'untouched');
});

t.test('writeJsonAtomic writes indented JSON with a final newline', async (t) => {
  const dir = t.testdir({});
  const target = path.join(dir, 'vm.json');
  await writeJsonAtomic(target, { pid: 42, argv: ['qemu'] });
  t.equal(await fs.readFile(target, 'utf8'), '{\n  "pid": 42,\n  "argv": [\n    "qemu"\n  ]\n}\n');
});
