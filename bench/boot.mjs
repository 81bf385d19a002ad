// Boot-to-ready: the time from starting the builder VM to the first successful readiness probe
// (Nix answering over SSH with the pinned host key), through the project's QEMU backend and through
// a bare qemu-system command with the same image and flags, as a ratio; and the image's size.
// With --arch x86_64,aarch64 each guest architecture is measured the same way and reported side by
// side (under tcg on an x86_64 host the aarch64 guest is emulated instruction by instruction).
// A benchmark, not a test. Run after `npx tsc -p tsconfig.json`:
//   node bench/boot.mjs [--runs 3] [--accel tcg] [--arch x86_64,aarch64 (default) | x86_64 | aarch64] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchQemuCommand, benchVmSpec, cachedGuestImage, load, median } from './common.mjs';

const { QemuBackend } = await load('daemon/backends/qemu/qemu-backend.js');
const { ensureBuilderKeys } = await load('daemon/keys/builder-keys.js');
const { waitUntilReady } = await load('daemon/probe/readiness-probe.js');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    accel: { type: 'string', default: 'tcg' },
    arch: { type: 'string', default: 'x86_64,aarch64' },
    json: { type: 'boolean' },
  },
});
const runs = Number(values.runs);
const archs = values.arch
  .split(',')
  .map((a) => a.trim())
  .filter(Boolean);
for (const a of archs) {
  if (a !== 'x86_64' && a !== 'aarch64') {
    console.error(`bench/boot: --arch ${a}: expected x86_64 or aarch64 (or both, comma-separated)`);
    process.exit(2);
  }
}

const keysDir = mkdtempSync(join(tmpdir(), 'lk-bench-keys-'));
const keys = await ensureBuilderKeys(join(keysDir, 'keys'));
const privateKey = readFileSync(keys.clientKey);

async function spec(arch, image) {
  const stateDir = mkdtempSync(join(tmpdir(), 'lk-bench-'));
  return benchVmSpec({ arch, accel: values.accel, ...image, stateDir, keys });
}
const target = (port) => ({
  host: '127.0.0.1',
  port,
  username: 'root',
  privateKey,
  hostPublicKeyLine: keys.hostPublicKeyLine,
});

async function throughProject(arch, image) {
  const s = await spec(arch, image);
  const backend = new QemuBackend({});
  const t0 = performance.now();
  const handle = await backend.start(s);
  await waitUntilReady(target(s.sshPort), { timeoutMs: 300_000, intervalMs: 100 });
  const ms = performance.now() - t0;
  await backend.stop(handle, { graceMs: 20_000 });
  rmSync(s.stateDir, { recursive: true, force: true });
  return ms;
}

async function throughBareQemu(arch, image) {
  const s = await spec(arch, image);
  const { executable, argv } = await benchQemuCommand(s);
  const t0 = performance.now();
  const child = spawn(executable, argv, { stdio: 'ignore' });
  await waitUntilReady(target(s.sshPort), { timeoutMs: 300_000, intervalMs: 100 });
  const ms = performance.now() - t0;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
  rmSync(s.stateDir, { recursive: true, force: true });
  return ms;
}

const byArch = {};
for (const arch of archs) {
  const image = await cachedGuestImage(arch);
  const project = [];
  const bare = [];
  for (let i = 0; i < runs; i++) {
    // Alternate so machine load drifts affect both alike.
    bare.push(await throughBareQemu(arch, image));
    project.push(await throughProject(arch, image));
  }
  byArch[arch] = {
    imageBytes: { kernel: statSync(image.kernel).size, initrd: statSync(image.initrd).size },
    projectMs: { median: Math.round(median(project)), all: project.map(Math.round) },
    bareQemuMs: { median: Math.round(median(bare)), all: bare.map(Math.round) },
    ratio: Number((median(project) / median(bare)).toFixed(3)),
  };
}
rmSync(keysDir, { recursive: true, force: true });
const result = { accel: values.accel, runs, hostArch: process.arch, archs: byArch };
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
  const mib = (b) => (b / 1048576).toFixed(1);
  console.log(
    `start → first successful probe, accel ${values.accel}, ${runs} runs each (median), on a ${process.arch} host:`,
  );
  for (const [arch, r] of Object.entries(byArch)) {
    console.log(
      `${arch} guest: kernel ${mib(r.imageBytes.kernel)} MiB + initrd ${mib(r.imageBytes.initrd)} MiB`,
    );
    console.log(
      `  through linuxkit-nix (QemuBackend): ${r.projectMs.median} ms  [${r.projectMs.all.join(', ')}]`,
    );
    console.log(
      `  bare qemu-system-${arch}, same argv: ${r.bareQemuMs.median} ms  [${r.bareQemuMs.all.join(', ')}]`,
    );
    console.log(`  ratio project / bare: ${r.ratio}`);
  }
  if (byArch.x86_64 && byArch.aarch64) {
    console.log(
      `aarch64 / x86_64 boot-to-ready (through linuxkit-nix): ${(byArch.aarch64.projectMs.median / byArch.x86_64.projectMs.median).toFixed(2)}`,
    );
  }
}
