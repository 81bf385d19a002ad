// `node build-cli.js --arch A --cache DIR --mirror URL --security-mirror URL [--suites a,b] [--snapshot URL]`:
// builds the Debian guest image and prints its manifest as JSON. For tests, benches and CI jobs
// that prepare the image ahead of the daemon; it needs nothing but node.
import { parseArgs } from 'node:util';
import { defaultGuestDir } from '../guest-image.js';
import type { GuestArch } from './arch-profile.js';
import { progressLine } from '../build-progress.js';
import { buildDebianGuestImage } from './build.js';
import { DEFAULT_SUITES } from './settings.js';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'x86_64' },
    cache: { type: 'string' },
    mirror: { type: 'string' },
    'security-mirror': { type: 'string' },
    suites: { type: 'string' },
    snapshot: { type: 'string' },
    'guest-dir': { type: 'string' },
  },
});
if (!values.cache || !values.mirror || !values['security-mirror']) {
  process.stderr.write(
    'usage: cli.js --arch x86_64|aarch64 --cache DIR --mirror URL --security-mirror URL [--suites a,b] [--snapshot URL]\n',
  );
  process.exit(2);
}
const started = Date.now();
try {
  const image = await buildDebianGuestImage({
    arch: values.arch as GuestArch,
    cacheDir: values.cache,
    guestDir: values['guest-dir'] ?? defaultGuestDir(),
    settings: {
      mirror: values.mirror,
      securityMirror: values['security-mirror'],
      suites: values.suites ? values.suites.split(',') : DEFAULT_SUITES,
      snapshot: values.snapshot,
    },
    log: (m) => process.stderr.write(`${m}\n`),
    onProgress: (p) => process.stderr.write(`${progressLine(p)}\n`),
  });
  process.stdout.write(
    `${JSON.stringify({ hash: image.hash, dir: image.dir, built: image.built, seconds: (Date.now() - started) / 1000, manifest: image.manifest })}\n`,
  );
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exit(1);
}
