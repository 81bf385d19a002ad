// The Debian mirror the tests build guest images from: the one this machine's apt sources name,
// found the way the daemon finds it (never a host written into a test). Fails loudly without one.
import { ensureGuestImage } from '../../daemon/image/guest-image.js';
import type { DebianImage } from '../../daemon/image/debian/cached-image.js';
import { DEFAULT_SUITES, type DebianSettings } from '../../daemon/image/debian/settings.js';
import { debianSettingsForHost } from '../../daemon/image/image-settings.js';
import { requireBuild } from './daemon-process.js';
import { imageCacheDir } from './env.js';

export async function hostDebianSettings(): Promise<DebianSettings> {
  const chosen = await debianSettingsForHost({ suites: DEFAULT_SUITES });
  if (
    !chosen.from.mirror.startsWith('apt sources') ||
    !chosen.from.securityMirror.startsWith('apt sources')
  ) {
    throw new Error(
      `this machine's apt sources name no Debian ${DEFAULT_SUITES[0]} mirror and security mirror (got ${JSON.stringify(chosen)})`,
    );
  }
  return chosen.settings;
}

/** The project's guest image for `arch` from the shared test cache, built by the real builder when missing. */
export async function testGuestImage(arch: 'x86_64' | 'aarch64'): Promise<DebianImage> {
  requireBuild();
  return ensureGuestImage({ arch, cacheDir: imageCacheDir, settings: await hostDebianSettings() });
}
