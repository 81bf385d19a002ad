// The daemon's drift repair against real files: an install under --root (in process), the
// watcher on it with a stand-in supervisor, and the files edited, rewritten and deleted the way
// people and other tools do. Foreign lines stay byte for byte; our blocks come back; our own
// writes never trigger another repair; a file something keeps rewriting is given up on, loudly.
import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import { lstat, mkdir, readFile, readlink, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfigFile } from '../../daemon/config/load.js';
import type { DaemonConfig } from '../../daemon/config/schema.js';
import type { StateEvent } from '../../daemon/controller.js';
import { writeFileAtomic } from '../../daemon/fs/atomic-write.js';
import { ensureBuilderKeys } from '../../daemon/keys/builder-keys.js';
import {
  DriftWatcher,
  MAX_REPAIRS_PER_WINDOW,
  REGISTRATION_SOURCE,
  REPAIR_WINDOW_MS,
  type CheckResult,
} from '../../daemon/drift/drift-watcher.js';
import {
  installLayout,
  MANAGED_BLOCK_NAME,
  type InstallLayout,
} from '../../daemon/host-files/install-layout.js';
import {
  blockMarkers,
  readManagedBlock,
  removeManagedBlock,
  upsertManagedBlock,
} from '../../daemon/host-files/managed-block.js';
import { renderRegistration } from '../../daemon/host-files/registration-files.js';
import { cli, pretendMachine, treeSnapshot } from '../install/install-fixtures.js';

const host = { platform: 'linux' as const, arch: 'x64' };
const FOREIGN_MACHINES =
  '# builders kept by hand\nssh://nix@big.example.org x86_64-linux /etc/nix/id_big 8 2 big-parallel - -';
const FOREIGN_DROPIN = '# an admin line before ours\nHost other\n  Port 2222\n';
const CHECK_LIMIT_MS = 10_000;

/** A stand-in for the supervisor: records repair events and the 'registration' error. */
class FakeHost {
  readonly events = new EventEmitter();
  readonly repairs: Array<{ message: string; details: Record<string, unknown> }> = [];
  error: string | null = null;
  reportEvent(_type: 'repair', message: string, details: Record<string, unknown> = {}): void {
    this.repairs.push({ message, details });
  }
  reportError(source: string, message: string): void {
    if (source === REGISTRATION_SOURCE) this.error = message;
  }
  clearError(source: string): void {
    if (source === REGISTRATION_SOURCE) this.error = null;
  }
  configChanged(): void {
    const e: StateEvent = { at: new Date().toISOString(), type: 'config', message: 'config changed' };
    this.events.emit('event', e);
  }
}

interface Rig {
  root: string;
  layout: InstallLayout;
  host: FakeHost;
  watcher: DriftWatcher;
  config: DaemonConfig;
  hostKey: string;
  setNow(ms: number): void;
  /** Resolves with the next check's result; register before causing it. */
  nextCheck(): Promise<CheckResult>;
  expectedBlock(which: 'machines' | 'dropin'): string;
}

async function rig(t: Test, opts: { install?: boolean } = {}): Promise<Rig> {
  const root = await mkdirTemp();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'etc/nix'), { recursive: true });
  await mkdir(join(root, 'etc/ssh/ssh_config.d'), { recursive: true });
  await writeFile(join(root, 'etc/nix/machines'), FOREIGN_MACHINES);
  await writeFile(join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf'), FOREIGN_DROPIN);
  const facts = pretendMachine('linux');
  const layout = installLayout({
    platform: 'linux',
    scope: 'system',
    root,
    user: { name: 'root', uid: 0, gid: 0, home: '/root' },
  });
  if (opts.install !== false) {
    const r = await cli('install', ['--root', root, '--system', '--ssh-port', '31500'], { facts });
    t.equal(r.code, 0, r.err);
  }
  // Without an install, the daemon has still made its keys in its state folder.
  if (opts.install === false) await ensureBuilderKeys(layout.keys.dir);
  const config = opts.install !== false ? await loadOk(layout.configPath) : await defaultsFor();
  const hostKey = (await readFile(layout.keys.hostPublicKey, 'utf8')).trim();
  const fake = new FakeHost();
  let now = 1_000_000;
  const waiters: Array<(r: CheckResult) => void> = [];
  const state = { config };
  const watcher = new DriftWatcher({
    manifestPath: layout.manifestPath,
    hostPublicKeyLine: hostKey,
    config: () => state.config,
    host: fake,
    log: { info: () => {}, warn: () => {} },
    debounceMs: 100,
    now: () => now,
    onCheck: (r) => {
      for (const w of waiters.splice(0)) w(r);
    },
  });
  t.teardown(() => watcher.close());
  const nextCheck = () =>
    new Promise<CheckResult>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no check within ${CHECK_LIMIT_MS} ms`)),
        CHECK_LIMIT_MS,
      );
      waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  const rigged: Rig = {
    root,
    layout,
    host: fake,
    watcher,
    get config() {
      return state.config;
    },
    set config(c: DaemonConfig) {
      state.config = c;
    },
    get hostKey() {
      return hostKey;
    },
    setNow: (ms) => void (now = ms),
    nextCheck,
    expectedBlock: (which) => {
      const texts = renderRegistration(layout, state.config, hostKey);
      return which === 'machines' ? texts.machinesBody : texts.sshDropInBody;
    },
  };
  return rigged;
}

async function mkdirTemp(): Promise<string> {
  const { mkdtemp } = await import('node:fs/promises');
  // Always /tmp: the root's length decides whether an ssh ControlPath fits, as in install-root.test.ts.
  return mkdtemp('/tmp/lk-drift-');
}

async function loadOk(file: string): Promise<DaemonConfig> {
  const r = await loadConfigFile(file, host);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

async function defaultsFor(): Promise<DaemonConfig> {
  const { defaultConfig } = await import('../../daemon/config/load.js');
  return defaultConfig(host);
}

/** After a repair, the check our own write causes finds nothing to do. */
async function ownWriteIsQuiet(t: Test, pending: Promise<CheckResult>): Promise<void> {
  const after = await pending;
  t.same(after.repairs, [], 'the check caused by our own write repairs nothing');
}

t.test('a fresh install is left alone: the first check finds every file right', async (t) => {
  const r = await rig(t);
  const machinesBefore = await readFile(r.layout.machinesFile, 'utf8');
  const first = await r.watcher.start();
  t.equal(first.active, true);
  t.same(first.repairs, []);
  t.same(first.problems, []);
  t.equal(await readFile(r.layout.machinesFile, 'utf8'), machinesBefore, 'not rewritten');
  t.equal(r.host.repairs.length, 0);
  t.equal(r.host.error, null);
});

t.test('the machines block deleted by hand comes back; the foreign lines keep every byte', async (t) => {
  const r = await rig(t);
  await r.watcher.start();
  const installed = await readFile(r.layout.machinesFile, 'utf8');
  const next = r.nextCheck();
  await writeFileAtomic(r.layout.machinesFile, removeManagedBlock(installed, MANAGED_BLOCK_NAME));
  const res = await next;
  const quiet = r.nextCheck();
  t.equal(res.repairs.length, 1);
  t.equal(res.repairs[0].reason, 'missing');
  t.equal(res.repairs[0].message, `restored the machines entry in ${r.layout.machinesFile} (it was missing)`);
  t.equal(await readFile(r.layout.machinesFile, 'utf8'), installed, 'byte for byte what install wrote');
  t.ok(
    (await readFile(r.layout.machinesFile, 'utf8')).startsWith(FOREIGN_MACHINES),
    'foreign lines first, unchanged',
  );
  t.same(
    r.host.repairs.map((x) => x.message),
    [res.repairs[0].message],
    'one repair event',
  );
  t.match(r.host.repairs[0].details, {
    source: 'registration',
    file: r.layout.machinesFile,
    reason: 'missing',
  });
  await ownWriteIsQuiet(t, quiet);
  t.equal(r.host.repairs.length, 1, 'still one repair event: our own write did not start a loop');
});

t.test('an edit of a foreign line is not drift: untouched, no repair', async (t) => {
  const r = await rig(t);
  await r.watcher.start();
  const installed = await readFile(r.layout.machinesFile, 'utf8');
  const edited = installed.replace('/etc/nix/id_big 8 2', '/etc/nix/id_big 16 2');
  t.not(edited, installed);
  const next = r.nextCheck();
  await writeFile(r.layout.machinesFile, edited);
  const res = await next;
  t.same(res.repairs, []);
  t.same(res.problems, []);
  t.equal(await readFile(r.layout.machinesFile, 'utf8'), edited, 'the edit stays');
  t.equal(r.host.repairs.length, 0);
});

t.test('our line changed by hand is restored in place', async (t) => {
  const r = await rig(t);
  await r.watcher.start();
  const installed = await readFile(r.layout.machinesFile, 'utf8');
  const block = readManagedBlock(installed, MANAGED_BLOCK_NAME)!;
  const fields = block.trim().split(' ');
  fields[3] = '64'; // max jobs
  const next = r.nextCheck();
  await writeFile(
    r.layout.machinesFile,
    upsertManagedBlock(installed, MANAGED_BLOCK_NAME, `${fields.join(' ')}\n`),
  );
  const res = await next;
  const quiet = r.nextCheck();
  t.equal(res.repairs.length, 1);
  t.equal(
    res.repairs[0].message,
    `restored the machines entry in ${r.layout.machinesFile} (it had been changed)`,
  );
  t.equal(await readFile(r.layout.machinesFile, 'utf8'), installed);
  await ownWriteIsQuiet(t, quiet);
});

t.test(
  "a block with the earlier marker (the ';' Nix misreads) is rewritten with the current one",
  async (t) => {
    const r = await rig(t);
    const installed = await readFile(r.layout.machinesFile, 'utf8');
    const { begin, legacyBegin } = blockMarkers(MANAGED_BLOCK_NAME);
    const old = installed.replace(begin, legacyBegin[0]);
    t.not(old, installed);
    await writeFile(r.layout.machinesFile, old);
    const first = await r.watcher.start();
    t.same(
      first.repairs.map((x) => x.reason),
      ['changed'],
    );
    t.equal(await readFile(r.layout.machinesFile, 'utf8'), installed);
  },
);

t.test('the machines file deleted is recreated with only our block, mode 0644', async (t) => {
  const r = await rig(t);
  await r.watcher.start();
  const next = r.nextCheck();
  await unlink(r.layout.machinesFile);
  const res = await next;
  const quiet = r.nextCheck();
  t.equal(res.repairs.length, 1);
  t.equal(
    res.repairs[0].message,
    `restored the machines entry in ${r.layout.machinesFile} (the file was deleted)`,
  );
  const text = await readFile(r.layout.machinesFile, 'utf8');
  t.equal(text, upsertManagedBlock('', MANAGED_BLOCK_NAME, r.expectedBlock('machines')));
  t.equal(text.split('\n').filter((l) => l && !l.startsWith('#')).length, 1, 'one machines line: ours');
  t.equal((await stat(r.layout.machinesFile)).mode & 0o777, 0o644);
  await ownWriteIsQuiet(t, quiet);
});

t.test('the drop-in with another port and the deleted known_hosts are both restored', async (t) => {
  const r = await rig(t);
  await r.watcher.start();
  const dropIn = await readFile(r.layout.sshDropIn, 'utf8');
  t.ok(dropIn.startsWith(FOREIGN_DROPIN), 'the admin lines come first');
  const knownHosts = await readFile(r.layout.knownHostsFile, 'utf8');
  let next = r.nextCheck();
  await writeFile(r.layout.sshDropIn, dropIn.replace('Port 31500', 'Port 2200'));
  let res = await next;
  t.same(
    res.repairs.map((x) => x.message),
    [`restored the SSH entry for linuxkit-builder in ${r.layout.sshDropIn} (it had been changed)`],
  );
  t.equal(await readFile(r.layout.sshDropIn, 'utf8'), dropIn);
  await ownWriteIsQuiet(t, r.nextCheck());

  next = r.nextCheck();
  await unlink(r.layout.knownHostsFile);
  res = await next;
  t.same(
    res.repairs.map((x) => x.message),
    [`restored the pinned host key in ${r.layout.knownHostsFile} (the file was deleted)`],
  );
  t.equal(await readFile(r.layout.knownHostsFile, 'utf8'), knownHosts);
});

t.test('a config change updates the blocks in place, as an update rather than drift', async (t) => {
  const r = await rig(t);
  await r.watcher.start();
  const before = await readFile(r.layout.machinesFile, 'utf8');
  r.config = {
    ...r.config,
    maxJobs: 7,
    systems: ['x86_64-linux', 'i686-linux'],
    supportedFeatures: ['big-parallel'],
    sshPort: 31501,
  };
  const next = r.nextCheck();
  r.host.configChanged();
  const res = await next;
  t.same(
    res.repairs.map((x) => [x.reason, x.message]),
    [
      ['config', `updated the machines entry in ${r.layout.machinesFile} for the new config`],
      ['config', `updated the SSH entry for linuxkit-builder in ${r.layout.sshDropIn} for the new config`],
    ],
  );
  const after = await readFile(r.layout.machinesFile, 'utf8');
  const line = readManagedBlock(after, MANAGED_BLOCK_NAME)!.trim().split(' ');
  t.equal(line[1], 'x86_64-linux,i686-linux');
  t.equal(line[3], '7');
  t.equal(line[5], 'big-parallel');
  t.equal(
    after,
    upsertManagedBlock(before, MANAGED_BLOCK_NAME, r.expectedBlock('machines')),
    'only the block changed',
  );
  t.ok(after.startsWith(FOREIGN_MACHINES));
  t.match(await readFile(r.layout.sshDropIn, 'utf8'), /^ {2}Port 31501$/m);
});

t.test('a file something keeps rewriting is given up on after a few repairs, and reported', async (t) => {
  const r = await rig(t);
  await r.watcher.start();
  const installed = await readFile(r.layout.machinesFile, 'utf8');
  const without = removeManagedBlock(installed, MANAGED_BLOCK_NAME);
  let now = 1_000_000;
  for (let i = 1; i <= MAX_REPAIRS_PER_WINDOW; i++) {
    now += 1000;
    r.setNow(now);
    const next = r.nextCheck();
    await writeFileAtomic(r.layout.machinesFile, without);
    const res = await next;
    t.equal(res.repairs.length, 1, `repair ${i}`);
    await ownWriteIsQuiet(t, r.nextCheck());
  }
  now += 1000;
  r.setNow(now);
  const next = r.nextCheck();
  await writeFileAtomic(r.layout.machinesFile, without);
  const res = await next;
  t.same(res.repairs, [], 'no fourth repair within the window');
  t.equal(
    await readFile(r.layout.machinesFile, 'utf8'),
    without,
    'the file is left as the other tool wrote it',
  );
  t.match(r.host.error, /something keeps rewriting the file, so linuxkitd stopped repairing it/);
  t.match(r.host.error, r.layout.machinesFile);
  t.equal(r.host.repairs.length, MAX_REPAIRS_PER_WINDOW);

  // Even after the window, a given-up file stays alone until it is right again (install).
  r.setNow(now + REPAIR_WINDOW_MS * 2);
  const later = r.nextCheck();
  await writeFileAtomic(r.layout.machinesFile, `${without}\n# touched again`);
  t.same((await later).repairs, []);
  const fixed = r.nextCheck();
  const inst = await cli('install', ['--root', r.root, '--system', '--ssh-port', '31500'], {
    facts: pretendMachine('linux'),
  });
  t.equal(inst.code, 0, inst.err);
  t.same((await fixed).repairs, []);
  t.equal(r.host.error, null, 'the error clears once install put the block back');
  const again = r.nextCheck();
  await writeFileAtomic(
    r.layout.machinesFile,
    removeManagedBlock(await readFile(r.layout.machinesFile, 'utf8'), MANAGED_BLOCK_NAME),
  );
  t.equal((await again).repairs.length, 1, 'and drift is repaired again');
});

t.test(
  'a machines file that is a symlink (nix-darwin, home-manager) is reported, never replaced',
  async (t) => {
    const r = await rig(t);
    await r.watcher.start();
    const target = join(r.root, 'etc/nix/machines.from-store');
    await writeFile(target, `${FOREIGN_MACHINES}\n`);
    const next = r.nextCheck();
    await unlink(r.layout.machinesFile);
    await symlink(target, r.layout.machinesFile);
    const res = await next;
    t.same(res.repairs, []);
    t.ok((await lstat(r.layout.machinesFile)).isSymbolicLink(), 'still a link');
    t.equal(await readlink(r.layout.machinesFile), target);
    t.equal(await readFile(target, 'utf8'), `${FOREIGN_MACHINES}\n`, 'the linked file untouched');
    t.match(r.host.error, /is a symbolic link .* that lacks the machines entry/);
  },
);

t.test(
  'the manifest gone (uninstall) ends the watch: nothing comes back; an install made later is picked up',
  async (t) => {
    const r = await rig(t, { install: false });
    const before = treeSnapshot(r.root);
    const first = await r.watcher.start();
    t.equal(first.active, false, 'no manifest: nothing to watch');
    t.same(first.repairs, []);

    // An install made while the daemon runs is picked up through the manifest.
    const picked = r.nextCheck();
    const inst = await cli('install', ['--root', r.root, '--system', '--ssh-port', '31500'], {
      facts: pretendMachine('linux'),
    });
    t.equal(inst.code, 0, inst.err);
    r.config = await loadOk(r.layout.configPath);
    let res = await picked;
    while (!res.active) res = await r.nextCheck();
    t.same(res.repairs, [], 'the new install is right as written');
    const next = r.nextCheck();
    await writeFileAtomic(
      r.layout.machinesFile,
      removeManagedBlock(await readFile(r.layout.machinesFile, 'utf8'), MANAGED_BLOCK_NAME),
    );
    t.equal((await next).repairs.length, 1, 'and its files are kept from then on');
    await r.nextCheck();

    // Uninstall deletes the manifest last; a watcher that sees it gone leaves the files alone.
    const manifest = await readFile(r.layout.manifestPath, 'utf8');
    const gone = r.nextCheck();
    await unlink(r.layout.manifestPath);
    t.equal((await gone).active, false);
    await writeFileAtomic(
      r.layout.machinesFile,
      removeManagedBlock(await readFile(r.layout.machinesFile, 'utf8'), MANAGED_BLOCK_NAME),
    );
    // Its folder is no longer watched; a check for any other reason (a config change) finds nothing to keep.
    res = await r.watcher.check();
    t.equal(res.active, false);
    t.same(res.repairs, [], 'the block stays removed');
    t.equal(await readFile(r.layout.machinesFile, 'utf8'), FOREIGN_MACHINES);
    t.equal(r.host.repairs.length, 1, 'no repair after the manifest went');

    // The real uninstall (with the manifest back, so it knows what to remove) leaves the tree as before.
    await writeFile(r.layout.manifestPath, manifest);
    await r.watcher.close();
    const un = await cli('uninstall', ['--root', r.root, '--system'], { facts: pretendMachine('linux') });
    t.equal(un.code, 0, un.err);
    t.equal(treeSnapshot(r.root), before, 'byte-identical to before install');
  },
);
