// Where the boot's time goes, and what each choice of kernel form and initrd compression costs.
// A bare qemu-system with the daemon's own argv (benchQemuCommand) boots the cached guest image; the
// SSH banner is awaited from the host, then one command reads the guest's uptime, the kernel log
// and /init's step times (GUEST_BOOT_TIMES). The phases:
//   firmware + load   QEMU start → the kernel's clock starts (for a bzImage this includes the
//                     guest decompressing the kernel itself)
//   kernel            → "Run /init" (of which: initramfs unpack, "Trying to unpack" → "Freeing initrd")
//   /init steps       from `init` to `dhcp` (ready), each step from the one that ended before it
//   → host banner     the ready line → the host sees the SSH banner
// Variants: the kernel forms the image carries (vmlinux, bzImage), and the initrd uncompressed or
// compressed with gzip (zlib) and xz (liblzma), plus zstd and lz4 when the host has those tools.
// A benchmark, not a test. Run after `npx tsc -p tsconfig.json`:
//   node bench/boot-breakdown.mjs [--runs 3] [--variants vmlinux:none,bzImage:none,...] [--json]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import lzma from 'lzma-native';
import { benchQemuCommand, benchVmSpec, cachedGuestImage, load, median } from './common.mjs';

const { ensureBuilderKeys } = await load('daemon/keys/builder-keys.js');
const { awaitSshBanner } = await load('daemon/probe/ssh-banner.js');
const { runGuestCommand } = await load('daemon/probe/guest-ssh.js');
const { GUEST_BOOT_TIMES } = await load('daemon/image/guest-contract.js');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    variants: { type: 'string' },
    json: { type: 'boolean' },
  },
});
const runs = Number(values.runs);
const hasTool = (name) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

const image = await cachedGuestImage('x86_64');
const work = mkdtempSync(join(tmpdir(), 'lk-bench-breakdown-'));
const keys = await ensureBuilderKeys(join(work, 'keys'));
const privateKey = readFileSync(keys.clientKey);

/** The initrd in each compression: the file the kernel is given. */
async function initrdAs(compression) {
  if (compression === 'none') return image.initrd;
  const out = join(work, `initrd.${compression}`);
  try {
    statSync(out);
    return out;
  } catch {}
  const raw = readFileSync(image.initrd);
  if (compression === 'gzip') writeFileSync(out, gzipSync(raw, { level: 6 }));
  else if (compression === 'xz') writeFileSync(out, await xzCompressForKernel(raw));
  else if (compression === 'zstd') run('zstd', ['-q', '-3', '-f', image.initrd, '-o', out]);
  // The kernel reads only lz4's legacy frame format.
  else if (compression === 'lz4') run('lz4', ['-q', '-l', '-f', image.initrd, out]);
  else throw new Error(`unknown compression ${compression}`);
  return out;
}
/** xz as the kernel's decoder reads it: CRC32 checks (it has no CRC64), a 1 MiB dictionary. */
function xzCompressForKernel(data) {
  const encoder = lzma.createStream('easyEncoder', { preset: 1, check: lzma.CHECK_CRC32 });
  const chunks = [];
  encoder.on('data', (c) => chunks.push(c));
  const done = new Promise((resolve, reject) => encoder.on('end', resolve).on('error', reject));
  encoder.end(data);
  return done.then(() => Buffer.concat(chunks));
}
function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
}

const defaultVariants = [
  'vmlinux:none',
  'bzImage:none',
  'vmlinux:gzip',
  'vmlinux:xz',
  ...(hasTool('zstd') ? ['vmlinux:zstd'] : []),
  ...(hasTool('lz4') ? ['vmlinux:lz4'] : []),
];
const variants = (values.variants?.split(',') ?? defaultVariants).map((v) => {
  const [kernel, compression = 'none'] = v.split(':');
  if (!image.kernels[kernel])
    throw new Error(`the image has no ${kernel} kernel (it has ${Object.keys(image.kernels)})`);
  return { name: `${kernel}, initrd ${compression}`, kernel, compression };
});

/** The kernel log's timestamp of the first line matching `re`, in ms. */
function dmesgAt(dmesg, re) {
  for (const line of dmesg.split('\n')) {
    const m = line.match(/^\[ *([0-9.]+)\] (.*)$/);
    if (m && re.test(m[2])) return Number(m[1]) * 1000;
  }
  return null;
}

async function boot(variant) {
  const stateDir = mkdtempSync(join(work, 'vm-'));
  const spec = await benchVmSpec({
    arch: 'x86_64',
    kernel: image.kernels[variant.kernel],
    initrd: await initrdAs(variant.compression),
    cmdline: image.cmdline,
    stateDir,
    keys,
  });
  const { sshPort } = spec;
  const { executable, argv } = await benchQemuCommand(spec);
  const t0 = performance.now();
  const child = spawn(executable, argv, { stdio: 'ignore' });
  try {
    const banner = await awaitSshBanner('127.0.0.1', sshPort, { deadlineMs: 300_000, retryEveryMs: 50 });
    const bannerMs = performance.now() - t0;
    banner.socket.destroy();
    const sent = performance.now() - t0;
    const res = await runGuestCommand(
      {
        host: '127.0.0.1',
        port: sshPort,
        username: 'root',
        privateKey,
        hostPublicKeyLine: keys.hostPublicKeyLine,
      },
      `cat /proc/uptime; echo @@; cat ${GUEST_BOOT_TIMES}; echo @@; dmesg`,
      { deadlineMs: 60_000 },
    );
    const back = performance.now() - t0;
    const [uptime, marks, dmesg] = res.stdout.split('@@\n');
    // The kernel's clock started this long after QEMU did (the uptime was read mid-round-trip).
    const kernelStart = (sent + back) / 2 - Number(uptime.split(' ')[0]) * 1000;
    const steps = Object.fromEntries(
      marks
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([s, name]) => [name, Number(s) * 1000]),
    );
    const runInit = dmesgAt(dmesg, /^Run \/init as init process/);
    const unpack = dmesgAt(dmesg, /^Trying to unpack rootfs image as initramfs/);
    const freed = dmesgAt(dmesg, /^Freeing initrd memory/);
    // /init's steps in the order they ended (some run beside others: see guest/init).
    const order = Object.keys(steps).sort((a, b) => steps[a] - steps[b]);
    const phases = {
      'firmware + load': kernelStart,
      kernel: runInit,
      '  initramfs unpack': freed - unpack,
      '/init start': steps.init - runInit,
    };
    for (let i = 1; i < order.length; i++)
      phases[`/init ${order[i]}`] = steps[order[i]] - steps[order[i - 1]];
    phases['→ host banner'] = bannerMs - (kernelStart + steps[order.at(-1)]);
    return { bannerMs, phases };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const results = [];
for (const v of variants) results.push({ ...v, runs: [] });
for (let i = 0; i < runs; i++) {
  // Round-robin, so drifts in the machine's load touch every variant alike.
  for (const r of results) r.runs.push(await boot(r));
}
const summary = results.map((r) => {
  const phases = {};
  for (const name of Object.keys(r.runs[0].phases))
    phases[name] = Math.round(median(r.runs.map((x) => x.phases[name])));
  return {
    variant: r.name,
    initrdBytes: statSync(r.compression === 'none' ? image.initrd : join(work, `initrd.${r.compression}`))
      .size,
    kernelBytes: statSync(image.kernels[r.kernel]).size,
    bannerMs: Math.round(median(r.runs.map((x) => x.bannerMs))),
    all: r.runs.map((x) => Math.round(x.bannerMs)),
    phases,
  };
});
rmSync(work, { recursive: true, force: true });

if (values.json) console.log(JSON.stringify({ runs, image: image.hash, variants: summary }, null, 2));
else {
  const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.log(`bare QEMU (the daemon's argv), tcg, x86_64 guest ${image.hash}, median of ${runs}:`);
  for (const s of summary) {
    console.log(
      `\n${s.variant} (kernel ${mib(s.kernelBytes)}, initrd ${mib(s.initrdBytes)}): QEMU start → SSH banner ${s.bannerMs} ms  [${s.all.join(', ')}]`,
    );
    for (const [name, ms] of Object.entries(s.phases))
      console.log(`  ${name.padEnd(20)} ${String(ms).padStart(6)} ms`);
  }
}
