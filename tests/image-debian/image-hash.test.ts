// The cached image's name is a pure function of what the image is made of: the packages, the
// guest contract, and the builder's own recipe (modules, programs, command line). A recipe change
// with the same packages must not hit an image built by the old recipe.
import t from 'tap';
import { ARCH_PROFILES, PROGRAMS } from '../../daemon/image/debian/arch-profile.js';
import { imageHash, resolutionRecordPath } from '../../daemon/image/debian/cached-image.js';

const packages = [{ name: 'nix-bin', version: '2.8.0-1', sha256: 'ab'.repeat(32) }] as Parameters<
  typeof imageHash
>[2];
const sources = [{ baseUrl: 'http://deb.debian.org/debian', suite: 'bookworm' }];

t.test('the same inputs give the same name; each input changes it', async (t) => {
  const base = imageHash('x86_64', 'contract', packages);
  t.equal(imageHash('x86_64', 'contract', packages), base, 'stable');
  t.not(imageHash('aarch64', 'contract', packages), base, 'the architecture');
  t.not(imageHash('x86_64', 'contract2', packages), base, 'the guest contract');
  t.not(
    imageHash('x86_64', 'contract', [{ ...packages[0]!, version: '2.8.0-2' }]),
    base,
    'a package version',
  );
});

t.test(
  "a change of the builder's module or program lists changes the image and resolution names",
  async (t) => {
    const hash = imageHash('x86_64', 'contract', packages);
    const record = resolutionRecordPath('/cache', 'x86_64', 'contract', sources);
    const modules = ARCH_PROFILES.x86_64.baseModules;
    ARCH_PROFILES.x86_64.baseModules = [...modules, 'another_module'];
    t.teardown(() => {
      ARCH_PROFILES.x86_64.baseModules = modules;
    });
    t.not(imageHash('x86_64', 'contract', packages), hash, 'a module more: another image');
    t.not(
      resolutionRecordPath('/cache', 'x86_64', 'contract', sources),
      record,
      'and another resolution record',
    );
    ARCH_PROFILES.x86_64.baseModules = modules;
    const vsock = ARCH_PROFILES.x86_64.vsockModules;
    ARCH_PROFILES.x86_64.vsockModules = [...vsock, 'vhost_vsock'];
    t.teardown(() => {
      ARCH_PROFILES.x86_64.vsockModules = vsock;
    });
    t.not(imageHash('x86_64', 'contract', packages), hash, 'a vsock module more: another image');
    ARCH_PROFILES.x86_64.vsockModules = vsock;
    PROGRAMS.push('sbin/another-program');
    t.teardown(() => {
      PROGRAMS.pop();
    });
    t.not(imageHash('x86_64', 'contract', packages), hash, 'a program more: another image');
  },
);
