// The Debian settings a build on this host runs with: the config's `image.debian`, with the
// mirrors it leaves out taken from the host's apt sources (on Debian) or Debian's public mirror.
import { aptMirrors, readAptSources } from './debian/apt-sources.js';
import {
  chooseDebianSettings,
  type ChosenDebianSettings,
  type DebianImageSetting,
} from './debian/settings.js';

export async function debianSettingsForHost(
  setting: DebianImageSetting,
  aptDir = '/etc/apt',
): Promise<ChosenDebianSettings> {
  const needApt = !setting.mirror || !setting.securityMirror;
  const files = needApt ? await readAptSources(aptDir) : [];
  // Only sources that carry the first configured suite (bookworm): an Ubuntu mirror does not.
  const found = aptMirrors(
    files.map((f) => f.text),
    [setting.suites[0], `${setting.suites[0]}-security`],
  );
  return chooseDebianSettings(setting, { ...found, files: files.map((f) => f.path).join(', ') });
}
