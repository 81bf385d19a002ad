// The guest image build: a cold build (empty cache: indexes, packages and image from the mirror)
// and a warm one (the same resolution: a cache hit with no network), per architecture, with the
// kernel and initrd sizes. The mirror is the one this machine's apt uses (as the daemon finds it).
// A benchmark, not a test. Run after `npx tsc -p tsconfig.json`:
//   node bench/image-build.mjs [--arch x86_64,aarch64] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const load = (p) => import(join(root, 'dist', p));
const { ensureGuestImage } = await load('daemon/image/guest-image.js');
const { debianSettingsForHost } = await load('daemon/image/image-settings.js');
const { DEFAULT_SUITES } = await load('daemon/image/debian/settings.js');

const { values } = parseArgs({
  options: { arch: { type: 'string', default: 'x86_64,aarch64' }, json: { type: 'boolean', default: false } },
});
const { settings } = await debianSettingsForHost({ suites: DEFAULT_SUITES });
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const results = {};
for (const arch of values.arch.split(',')) {
  const cacheDir = mkdtempSync(join(tmpdir(), 'lk-bench-image-'));
  try {
    let t0 = performance.now();
    const cold = await ensureGuestImage({ arch, cacheDir, settings });
    const coldMs = performance.now() - t0;
    t0 = performance.now();
    const warm = await ensureGuestImage({ arch, cacheDir, settings });
    const warmMs = performance.now() - t0;
    if (warm.built || warm.hash !== cold.hash)
      throw new Error(`${arch}: the second call was not a cache hit`);
    results[arch] = {
      coldMs,
      warmMs,
      kernelBytes: cold.manifest.kernel.bytes,
      kernelFormat: cold.manifest.kernel.format,
      initrdBytes: cold.manifest.initrd.bytes,
      packages: cold.manifest.debian.packages.length,
    };
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
if (values.json) process.stdout.write(`${JSON.stringify({ mirror: settings.mirror, results })}\n`);
else {
  process.stdout.write(
    `guest image build from ${settings.mirror} (cold: empty cache; warm: same resolution, no network)\n`,
  );
  for (const [arch, r] of Object.entries(results)) {
    process.stdout.write(
      `${arch.padEnd(8)} cold ${(r.coldMs / 1000).toFixed(1)} s  warm ${r.warmMs.toFixed(0)} ms  kernel ${mib(r.kernelBytes)} (${r.kernelFormat})  initrd ${mib(r.initrdBytes)}  ${r.packages} packages\n`,
    );
  }
}
