// Three processes writing one machines file at once, against the real linuxkitd and VM (tcg), on a
// `--root` install: `linuxkitctl install` run again and again; the daemon's drift watcher rewriting
// its block each time the config's speedFactor is edited under it; and a foreign writer (a shell
// loop, as an admin's script would) appending its own builder lines with `>>`. Afterwards every
// foreign line is there once and in order, and exactly one managed block says what install writes.
import t from 'tap';
import { spawn, execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { installLayout, MANAGED_BLOCK_NAME } from '../../daemon/host-files/install-layout.js';
import { blockMarkers, readManagedBlock, removeManagedBlock } from '../../daemon/host-files/managed-block.js';
import { freePort, requireTool, tempDir } from '../helpers/env.js';
import { ctlMain, isHealthy, startTestDaemon, type DaemonUnderTest } from '../helpers/daemon-process.js';
import {
  PATIENT_BOOT_MS,
  PATIENT_FILE_TIMEOUT_MS,
  PATIENT_TEST_CONFIG,
  killQemus,
  readConfig,
  recordEvents,
  writeConfig,
} from './vm-helpers.js';

requireTool('qemu-system-x86_64');

const INSTALLS = 6;
const BOOT_MS = PATIENT_BOOT_MS;
// Several tcg boots on a loaded machine: more than tap's default of 600 s per file.
t.setTimeout(PATIENT_FILE_TIMEOUT_MS);
const run = promisify(execFile);

const root = await tempDir('race');
const sshPort = await freePort();
const layout = installLayout({
  platform: 'linux',
  scope: 'system',
  root,
  user: { name: 'root', uid: 0, gid: 0, home: '/root' },
});
await mkdir(join(root, 'etc/nix'), { recursive: true });
const FOREIGN_BEFORE =
  '# builders kept by hand\nssh://nix@arm.example.org aarch64-linux /etc/nix/id_arm 4 1 big-parallel - -\n';
await writeFile(layout.machinesFile, FOREIGN_BEFORE);

const install = () =>
  run(
    process.execPath,
    [
      ctlMain,
      'install',
      '--root',
      root,
      '--system',
      '--accel',
      'tcg',
      '--ssh-port',
      String(sshPort),
      '--cpus',
      '1',
      '--memory',
      '1024',
    ],
    {
      // Generous: one CLI run took over two minutes on this 2-core machine at load 35.
      timeout: 600_000,
    },
  );

let daemon: DaemonUnderTest | null = null;
t.teardown(async () => {
  daemon?.proc.kill('SIGKILL');
  killQemus(layout.stateDir);
  await rm(root, { recursive: true, force: true });
});

t.test(
  'install, the drift watcher and a foreign appender race on the machines file: nothing foreign is lost',
  async (t) => {
    await install();
    // Quick probes: the daemon's config is the installed one with the test's probe timings.
    const installed = await readConfig(layout.stateDir);
    await writeConfig(layout.stateDir, { ...installed, probe: PATIENT_TEST_CONFIG.probe });
    daemon = await startTestDaemon({ stateDir: layout.stateDir, sshPort });
    t.equal(daemon.socket, layout.socketPath, 'the installed socket');
    await daemon.waitFor(isHealthy, BOOT_MS, 'the builder to be healthy');
    const rec = recordEvents(daemon);
    t.teardown(() => rec.close());

    // The foreign writer: bursts of appends with pauses (so the watcher's 500 ms of quiet comes too),
    // for as long as the flag file exists; it writes how many lines it appended when it ends.
    const flag = join(root, 'appending');
    const count = join(root, 'appended');
    await writeFile(flag, '');
    const foreignScript = [
      'i=0',
      `while [ -e '${flag}' ]; do`,
      `  echo "ssh://nix@foreign-$i.example.org x86_64-linux /etc/nix/id_foreign 1 1 - - -" >> '${layout.machinesFile}'`,
      '  i=$((i+1))',
      '  if [ $((i % 20)) -eq 0 ]; then sleep 0.7; else sleep 0.01; fi',
      'done',
      `echo $i > '${count}'`,
    ].join('\n');
    const started = Date.now();
    const foreign = spawn('sh', ['-c', foreignScript], { stdio: 'ignore' });
    const foreignDone = new Promise<number | null>((resolve) => foreign.once('exit', resolve));

    // The config edited under the daemon: each edit makes it rewrite its block (reason "config").
    let edits = 0;
    let editing = true;
    const editor = (async () => {
      while (editing) {
        const c = await readConfig(layout.stateDir);
        await writeConfig(layout.stateDir, { ...c, speedFactor: 1 + (edits % 5) });
        edits++;
        await new Promise((r) => setTimeout(r, 1300));
      }
    })();

    const installTimes: number[] = [];
    for (let i = 0; i < INSTALLS; i++) {
      const at = Date.now();
      await install();
      installTimes.push(Date.now() - at);
    }
    editing = false;
    await editor;
    await rm(flag);
    t.equal(await foreignDone, 0, 'the foreign writer finished');
    const appended = Number(await readFile(count, 'utf8'));
    t.ok(appended > 0, `the foreign writer appended ${appended} lines`);
    const raceMs = Date.now() - started;
    // Let the last edit settle: one more install makes the block current, then the watcher looks.
    await install();
    await new Promise((r) => setTimeout(r, 3000));

    const final = await readFile(layout.machinesFile, 'utf8');
    const { begin, end } = blockMarkers(MANAGED_BLOCK_NAME);
    t.equal(
      final.split('\n').filter((l) => l.startsWith(begin)).length,
      1,
      'exactly one managed block begins',
    );
    t.equal(final.split('\n').filter((l) => l === end).length, 1, 'and ends');
    const block = readManagedBlock(final, MANAGED_BLOCK_NAME)!;
    const speedFactor = (await readConfig(layout.stateDir)).speedFactor;
    t.equal(
      block.trim().split(' ')[4],
      String(speedFactor),
      `the block has the config's speedFactor ${speedFactor}`,
    );

    const foreignLines = removeManagedBlock(final, MANAGED_BLOCK_NAME)
      .split('\n')
      .filter((l) => l.includes('foreign-'));
    const expected = Array.from(
      { length: appended },
      (_, i) => `ssh://nix@foreign-${i}.example.org x86_64-linux /etc/nix/id_foreign 1 1 - - -`,
    );
    const missing = expected.filter((l) => !foreignLines.includes(l));
    t.same(missing.slice(0, 5), [], `no foreign line lost (${missing.length} of ${appended} missing)`);
    t.same([...foreignLines].sort(), [...expected].sort(), 'each foreign line once');
    // A line written to the old file by a writer that opened it just before a replace is appended
    // to the new file after the check: it may land after a line written later to the new file.
    const displaced = foreignLines.filter((l, i) => l !== expected[i]).length;
    t.comment(
      `${displaced} of ${appended} foreign lines out of their append order (written across a replace)`,
    );
    t.ok(final.startsWith(FOREIGN_BEFORE), 'the lines from before install stay first');
    t.same(
      readdirSync(join(root, 'etc/nix')).filter((n) => n.endsWith('.tmp')),
      [],
      'no temp file left',
    );

    const repairs = rec.events.filter((e) => e.type === 'repair' && e.file === layout.machinesFile);
    const s = await daemon.client.status();
    t.ok(isHealthy(s), 'the builder stayed healthy');
    t.same(s.errors, [], 'no registration error left');
    const sorted = [...installTimes].sort((a, b) => a - b);
    t.comment(
      `${raceMs} ms of racing: ${INSTALLS} installs (median ${sorted[sorted.length >> 1]} ms each), ${edits} config edits, ` +
        `${repairs.length} daemon rewrites of the machines block (${[...new Set(repairs.map((e) => e.reason))].join(', ')}), ` +
        `${appended} foreign appends: ${appended - missing.length} kept`,
    );
  },
);
