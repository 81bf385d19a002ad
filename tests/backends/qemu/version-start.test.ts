// The QEMU version check at start, against STAND-IN qemu-system-* scripts that print a chosen
// `--version` and log every other invocation (which would be a VM): a QEMU too old is refused
// before any VM starts, with the version found, the one needed and why; and the real supervisor
// and reconcile step stop retrying it after `maxAttempts`, with that message as the reason.
import t from 'tap';
import { existsSync } from 'node:fs';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmSpec } from '../../../daemon/backend.js';
import { qemuPaths } from '../../../daemon/backends/qemu/args.js';
import { QemuBackend } from '../../../daemon/backends/qemu/qemu-backend.js';
import { readQemuVersionOnce } from '../../../daemon/backends/qemu/version.js';
import type { Policy } from '../../../daemon/reconciler/types.js';
import { Supervisor } from '../../../daemon/supervisor/supervisor.js';
import { freePort, tempDir } from '../../helpers/env.js';

type Teardown = { teardown(fn: () => unknown): void };

interface StandIn {
  dir: string;
  path: string;
  /** One line per invocation: its arguments. */
  invocations(): Promise<string[]>;
}

/**
 * A qemu-system-<arch> that answers `--version` with `version`; any other invocation is logged
 * and then either idles like a VM that never answers QMP, or aborts as `onStart` says.
 */
async function standInQemu(
  t: Teardown,
  arch: string,
  version: string,
  onStart = 'exec sleep 300',
): Promise<StandIn> {
  const dir = await tempDir('qemu-standin');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, `qemu-system-${arch}`);
  const log = join(dir, 'invocations.log');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      `echo "$*" >> '${log}'`,
      'if [ "$1" = "--version" ]; then',
      `  printf 'QEMU emulator version ${version}\\nCopyright (c) 2003-2024 Fabrice Bellard and the QEMU Project developers\\n'`,
      '  exit 0',
      'fi',
      onStart,
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  const invocations = async () =>
    existsSync(log) ? (await readFile(log, 'utf8')).trimEnd().split('\n') : [];
  return { dir, path, invocations };
}

async function specFor(t: Teardown, arch: VmSpec['arch'], accel: VmSpec['accel']): Promise<VmSpec> {
  const root = await tempDir('qemu-ver');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const stateDir = join(root, 'state');
  return {
    arch,
    accel,
    cpus: 1,
    memoryMiB: 8192,
    kernel: join(root, 'vmlinux'),
    initrd: '',
    cmdline: 'console=ttyS0',
    sshPort: await freePort(),
    stateDir,
    consoleLog: join(stateDir, 'console.log'),
    guestFiles: {},
  };
}

t.test('a QEMU older than 7.0 is refused before anything starts', async (t) => {
  const qemu = await standInQemu(t, 'x86_64', '6.2.0 (Debian 1:6.2+dfsg-2ubuntu6.22)');
  const spec = await specFor(t, 'x86_64', 'tcg');
  await t.rejects(new QemuBackend({ qemuBinary: qemu.path }).start(spec), {
    name: 'QemuTooOldError',
    permanent: true,
    message: `${qemu.path} is QEMU 6.2.0, too old for an x86_64 guest with tcg: QEMU 7.0.0 or later is needed (the command line is written for QEMU 7.0 and later (the \`virt\` memory map without highmem=off, \`-accel\`, pvpanic-pci)); install a newer QEMU first on the daemon's PATH (e.g. \`brew upgrade qemu\`), then run \`linuxkitctl start\``,
  });
  t.same(await qemu.invocations(), ['--version'], 'only asked for its version: no VM was started');
  t.notOk(existsSync(qemuPaths(spec.stateDir).pidFile), 'no pid file');
});

t.test('found on PATH: the error names the file that would have run', async (t) => {
  const qemu = await standInQemu(t, 'x86_64', '6.1.1');
  const spec = await specFor(t, 'x86_64', 'kvm');
  const savedPath = process.env.PATH;
  process.env.PATH = `${qemu.dir}:${savedPath}`;
  t.teardown(() => void (process.env.PATH = savedPath));
  await t.rejects(new QemuBackend().start(spec), {
    message: new RegExp(
      `^${qemu.path.replaceAll('.', '\\.')} is QEMU 6\\.1\\.1, too old for an x86_64 guest with kvm`,
    ),
  });
  t.same(await qemu.invocations(), ['--version']);
});

t.test(
  'Apple Silicon (aarch64 + hvf) needs 9.2.3: 9.2.1 is refused, 9.2.3 starts with plain virt and -cpu host',
  async (t) => {
    const old = await standInQemu(t, 'aarch64', '9.2.1');
    const spec = await specFor(t, 'aarch64', 'hvf');
    await t.rejects(new QemuBackend({ qemuBinary: old.path }).start(spec), {
      message:
        /is QEMU 9\.2\.1, too old for an aarch64 guest with hvf: QEMU 9\.2\.3 or later is needed \(on an Apple M4 \(SME\) older releases abort on `-cpu host` under hvf \(QEMU issue #2665/,
    });
    t.same(await old.invocations(), ['--version']);

    const fixed = await standInQemu(t, 'aarch64', '9.2.3');
    // The stand-in never answers QMP: the start gets past the version check and then times out.
    await t.rejects(new QemuBackend({ qemuBinary: fixed.path, startTimeoutMs: 1500 }).start(spec), {
      message: /QMP socket .* did not answer within 1500 ms/,
    });
    const [version, vm] = await fixed.invocations();
    t.equal(version, '--version');
    t.match(
      vm,
      /^-machine virt -accel hvf -cpu host -smp 1 -m 8192 /,
      'started as a VM: plain virt, 8 GiB, -cpu host',
    );
  },
);

t.test("nixpkgs' QEMU 11.0 aborting under hvf (NixOS/nixpkgs#532038) is named as such", async (t) => {
  const qemu = await standInQemu(
    t,
    'aarch64',
    '11.0.1',
    [
      "echo 'ERROR:../target/arm/hvf/sysreg.c.inc:149:hvf_arch_init_vcpu: assertion failed: (HV_SYS_REG_SMCR_EL1 == KVMID_TO_HVF(KVMID_AA64_SYS_REG64(3, 0, 1, 2, 6)))' >&2",
      'kill -ABRT $$',
    ].join('\n'),
  );
  const spec = await specFor(t, 'aarch64', 'hvf');
  await t.rejects(new QemuBackend({ qemuBinary: qemu.path }).start(spec), {
    message:
      /^QEMU was killed by SIGABRT before it was up: this QEMU build aborts under hvf on macOS 15\.2 and later because it was built against a macOS SDK older than 15 .*\(stderr: ERROR:.*hvf_arch_init_vcpu/s,
  });
});

t.test(
  'the supervisor stops retrying a QEMU too old: failed after maxAttempts, no VM ever started',
  async (t) => {
    const qemu = await standInQemu(t, 'x86_64', '6.2.0');
    const spec = await specFor(t, 'x86_64', 'tcg');
    const policy: Policy = {
      initialDelayMs: 50,
      maxDelayMs: 200,
      multiplier: 2,
      jitter: 0,
      maxAttempts: 3,
      stablePeriodMs: 60_000,
      bootGraceMs: 15_000,
      degradedRestartMs: 60_000,
      probeIntervalMs: 1000,
      nixProbeIntervalMs: 60_000,
      bootProbeIntervalMs: 100,
      stopGraceMs: 1000,
    };
    let probes = 0;
    const sup = new Supervisor({
      backend: new QemuBackend({ qemuBinary: qemu.path }),
      buildSpec: async () => spec,
      probe: async () => {
        probes++;
        throw new Error('no VM to probe');
      },
      store: {
        loadDesired: async () => null,
        saveDesired: async () => {},
        loadRecord: async () => null,
        saveRecord: async () => {},
        loadMemory: async () => null,
        saveMemory: async () => {},
      },
      policy: () => policy,
      info: () => ({
        backend: 'qemu',
        backendReason: 'test',
        accel: 'tcg',
        arch: 'x86_64',
        sshPort: spec.sshPort,
        configPath: join(spec.stateDir, 'config.json'),
        stateDir: spec.stateDir,
        version: '0.1.0',
      }),
      logs: async () => [],
      log: { info() {}, warn() {}, error() {} },
    });
    t.teardown(() => sup.shutdown({ stopVm: true }));
    const began = Date.now();
    await sup.init();
    const failed = await sup.waitForState((s) => s.state === 'failed', 30_000);
    t.comment(
      `failed after ${Date.now() - began} ms and ${(await qemu.invocations()).length} version checks`,
    );
    t.match(
      failed.failedReason,
      /^gave up after 3 failed starts in a row \(last: could not start the VM: .* is QEMU 6\.2\.0, too old for an x86_64 guest with tcg: QEMU 7\.0\.0 or later is needed/,
    );
    t.same(
      await qemu.invocations(),
      ['--version'],
      'one version check for every attempt (the file did not change), no VM',
    );
    t.equal(probes, 0, 'nothing to probe');
  },
);

t.test('the version is asked once per executable file, and again when the file changes', async (t) => {
  const qemu = await standInQemu(t, 'x86_64', '8.2.2');
  t.equal((await readQemuVersionOnce(qemu.path)).firstLine, 'QEMU emulator version 8.2.2');
  t.equal((await readQemuVersionOnce(qemu.path)).firstLine, 'QEMU emulator version 8.2.2');
  t.same(await qemu.invocations(), ['--version'], 'one QEMU run for two checks');
  // An upgrade: a new file in its place.
  const upgraded = (await readFile(qemu.path, 'utf8')).replace('8.2.2', '9.2.0');
  await rm(qemu.path);
  await writeFile(qemu.path, upgraded, { mode: 0o755 });
  t.equal((await readQemuVersionOnce(qemu.path)).firstLine, 'QEMU emulator version 9.2.0');
  t.same(await qemu.invocations(), ['--version', '--version']);
});
