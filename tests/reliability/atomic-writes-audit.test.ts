// Every file the product writes goes through daemon/fs/atomic-write.ts, or is a log it appends
// to, or is listed here with the reason it may be written another way. A new direct write in
// daemon/, client/ or launchd/ fails this test until it uses writeFileAtomic or is listed.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../helpers/env.js';

const PRODUCT_DIRS = ['daemon', 'client', 'launchd'];
const ATOMIC_WRITER = 'daemon/fs/atomic-write.ts';

/** Calls that put bytes in a file (or create one) without going through writeFileAtomic. */
const DIRECT_WRITE =
  /\b(writeFile|writeFileSync|appendFile|appendFileSync|createWriteStream|copyFile|copyFileSync|writeSync)\s*\(|\bopen(Sync)?\([^)]*,\s*(['"])(w|wx|w\+|a|a\+|r\+)\3|\bopen(Sync)?\([^)]*\?\s*'w'/;

interface Allowed {
  file: string;
  /** Matches the offending line. */
  line: RegExp;
  kind: 'log' | 'temp-then-rename' | 'not atomic';
  why: string;
}

const ALLOWED: Allowed[] = [
  {
    file: 'daemon/logging/rotating-file.ts',
    line: /openSync\(.*'a'|writeSync\(/,
    kind: 'log',
    why: 'the daemon log: appended line by line, rotated by rename',
  },
  {
    file: 'daemon/backends/common/child-process.ts',
    line: /return open\(path, size >/,
    kind: 'log',
    why: "a hypervisor's stderr/output log (QEMU, hyperkit, vpnkit): appended, started afresh past 1 MiB",
  },
  {
    file: 'daemon/backends/hyperkit/console-ring-follower.ts',
    line: /appendFile\(this\.logPath/,
    kind: 'log',
    why: 'the console log: the ring buffer appended as it fills',
  },
  {
    file: 'daemon/backends/hyperkit/hyperkit-backend.ts',
    line: /appendFile\(consoleLog, ''\)/,
    kind: 'log',
    why: "creates the boot's console log empty (touch)",
  },
  {
    file: 'daemon/fs/shared-file-rewrite.ts',
    line: /appendFile\(target, late\)/,
    kind: 'not atomic',
    why: "another program's lines appended to the old file just after our replace, appended to the new one so they are not lost",
  },
  {
    file: 'daemon/image/debian/build.ts',
    line: /writeFile\(join\(tmp, (k\.format|'initrd'|'manifest\.json')\)/,
    kind: 'temp-then-rename',
    why: 'a guest image: its kernel forms, initrd and manifest written in a temp directory that is renamed into the cache whole',
  },
  {
    file: 'daemon/backends/hyperkit/guest-files.ts',
    line: /copyFile\(initrd, tmp|open\(tmp, 'a'/,
    kind: 'temp-then-rename',
    why: 'the boot initrd: built in a temp file, fsynced, renamed over the target',
  },
];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

t.test('direct file writes in the product are logs, temp-then-rename, or listed with a reason', async (t) => {
  const found: Array<{ file: string; lineNo: number; text: string; allowed: Allowed | undefined }> = [];
  for (const dir of PRODUCT_DIRS) {
    for (const abs of sources(join(repoRoot, dir))) {
      const file = relative(repoRoot, abs);
      if (file === ATOMIC_WRITER) continue;
      readFileSync(abs, 'utf8')
        .split('\n')
        .forEach((text, i) => {
          if (/^\s*(\/\/|\*)/.test(text) || /^\s*import\b/.test(text) || !DIRECT_WRITE.test(text)) return;
          found.push({
            file,
            lineNo: i + 1,
            text: text.trim(),
            allowed: ALLOWED.find((a) => a.file === file && a.line.test(text)),
          });
        });
    }
  }
  const unexplained = found.filter((f) => !f.allowed).map((f) => `${f.file}:${f.lineNo}: ${f.text}`);
  t.same(
    unexplained,
    [],
    'no direct write without a reason: use writeFileAtomic (daemon/fs/atomic-write.ts), or list it here',
  );
  for (const f of found.filter((x) => x.allowed))
    t.comment(`${f.allowed!.kind}: ${f.file}:${f.lineNo}: ${f.allowed!.why}`);
  const notAtomic = found.filter((f) => f.allowed?.kind === 'not atomic');
  t.comment(
    `${found.length} direct write calls; ${notAtomic.length} not atomic: ${[...new Set(notAtomic.map((f) => f.file))].join(', ') || 'none'}`,
  );
  t.ok(found.length > 0, 'the scan finds the known log writers (it is looking in the right places)');
});

t.test('the product writes its state and registration files through writeFileAtomic', async (t) => {
  const users = PRODUCT_DIRS.flatMap((d) => sources(join(repoRoot, d)))
    .filter((abs) => /\bwrite(File|Json)Atomic\(/.test(readFileSync(abs, 'utf8')))
    .map((abs) => relative(repoRoot, abs));
  for (const expected of [
    'daemon/config/paths.ts',
    'daemon/state/daemon-store.ts',
    'daemon/daemon-app.ts',
    'client/install/install-fs.ts',
  ]) {
    t.ok(users.includes(expected), `${expected} writes atomically`);
  }
  t.comment(`writeFileAtomic/writeJsonAtomic used in: ${users.join(', ')}`);
});
