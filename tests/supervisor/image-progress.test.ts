// The image build's progress in status and events: shown while the start's build runs, an event
// at each phase and at most once a second between, gone once the start ends. Fake time.
import t from 'tap';
import type { ImageBuildProgress } from '../../daemon/image/build-progress.js';
import { parseProgressLine, progressLine } from '../../daemon/image/build-progress.js';
import { ImageProgress } from '../../daemon/supervisor/image-progress.js';
import { gate, harness, settle } from './fakes.js';

const at = (
  phase: ImageBuildProgress['phase'],
  packages: number,
  message = `step ${packages}`,
): ImageBuildProgress => ({ phase, packages, bytes: packages * 1000, message });

t.test('events: each phase change, and at most one a second within a phase', async (t) => {
  let now = 0;
  const announced: string[] = [];
  const p = new ImageProgress(
    () => now,
    (s) => announced.push(`${s.phase}:${s.packages}`),
  );
  p.update(at('index', 0));
  now = 100;
  p.update(at('packages', 1));
  now = 600;
  p.update(at('packages', 2));
  now = 1100;
  p.update(at('packages', 3));
  now = 1200;
  p.update(at('image', 3));
  t.same(announced, ['index:0', 'packages:1', 'packages:3', 'image:3']);
  t.match(p.snapshot, {
    phase: 'image',
    packages: 3,
    startedAt: new Date(0).toISOString(),
    updatedAt: new Date(1200).toISOString(),
  });
  p.clear();
  t.equal(p.snapshot, null);
});

t.test('the builder line format: progress lines parse back, log lines and garbage do not', async (t) => {
  const p = at('packages', 7, 'unpacking nix-bin 2.8.0-1');
  t.same(parseProgressLine(progressLine(p)), p);
  t.equal(parseProgressLine('built the x86_64 guest image abc'), null);
  t.equal(parseProgressLine('progress {not json'), null);
  t.equal(parseProgressLine('progress {"phase":"index"}'), null, 'fields missing');
});

t.test('status shows the build of the start in progress; it is gone once the VM starts', async (t) => {
  const h = harness();
  const build = gate();
  h.specGate.promise = build.promise;
  await h.sup.init();
  await settle();
  t.equal(h.sup.status().image, null, 'nothing reported yet');
  const report = h.specsBuilt[0]!.onImageProgress!;
  report(at('index', 0, 'reading the signed package indexes'));
  report(at('packages', 12, 'unpacking nix-bin 2.8.0-1'));
  t.match(h.sup.status(), {
    state: 'starting',
    image: { phase: 'packages', packages: 12, bytes: 12000, message: 'unpacking nix-bin 2.8.0-1' },
  });
  t.same(
    h.events.filter((e) => e.type === 'image').map((e) => [e.message, e.phase]),
    [
      ['reading the signed package indexes', 'index'],
      ['unpacking nix-bin 2.8.0-1', 'packages'],
    ],
  );
  build.open();
  await settle();
  t.equal(h.backend.started.length, 1, 'the VM started');
  t.equal(h.sup.status().image, null, 'no build in progress any more');
  report(at('image', 12));
  t.equal(h.sup.status().image, null, 'a late report from an ended start is ignored');
});
