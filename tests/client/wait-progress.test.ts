// start --wait's progress while the image builds: redrawn in place on a terminal, a few plain
// lines in a log, closed cleanly when the build ends.
import t from 'tap';
import { NO_PROGRESS, progressOutput } from '../../client/wait-progress.js';
import { sampleStatus } from '../api/fixtures/fake-controller.js';

const t0 = Date.parse('2026-01-01T00:00:00.000Z');
const building = (phase: 'index' | 'packages' | 'image', packages: number, message: string) =>
  sampleStatus({
    state: 'starting',
    healthy: false,
    image: {
      phase,
      packages,
      bytes: packages * 2 ** 20,
      message,
      startedAt: new Date(t0).toISOString(),
      updatedAt: new Date(t0).toISOString(),
    },
  });
const tty = { isTTY: true, columns: 60 };
const log = { isTTY: false, columns: 80 };

t.test('a terminal gets one line, redrawn and cut to its width, closed when the build ends', async (t) => {
  const first = progressOutput(
    NO_PROGRESS,
    building('packages', 3, 'unpacking libc6 2.36-9'),
    new Date(t0 + 42_000),
    tty,
  );
  t.equal(first.text, '\r\x1b[Kbuilding the guest image for 42s: 3 packages (3.0 MiB) rea…');
  t.ok(first.text!.length - '\r\x1b[K'.length <= 59, 'fits the width');
  const ended = progressOutput(
    first.next,
    sampleStatus({ state: 'starting', healthy: false }),
    new Date(t0 + 50_000),
    tty,
  );
  t.equal(ended.text, '\n');
});

t.test('a log gets a line at each phase and at most every 5 s within one', async (t) => {
  let state = NO_PROGRESS;
  const lines: string[] = [];
  const steps: Array<[number, ReturnType<typeof building>]> = [
    [0, building('index', 0, 'reading the indexes')],
    [1000, building('packages', 1, 'unpacking a')],
    [3000, building('packages', 5, 'unpacking b')],
    [6500, building('packages', 9, 'unpacking c')],
    [7000, building('image', 30, 'writing the kernel and initramfs')],
    [8000, sampleStatus({ state: 'starting', healthy: false })],
  ];
  for (const [ms, s] of steps) {
    const out = progressOutput(state, s, new Date(t0 + ms), log);
    state = out.next;
    if (out.text) lines.push(out.text);
  }
  t.same(lines, [
    'building the guest image for 0s; reading the indexes\n',
    'building the guest image for 1s: 1 packages (1.0 MiB) read; unpacking a\n',
    'building the guest image for 6s: 9 packages (9.0 MiB) read; unpacking c\n',
    'building the guest image for 7s: 30 packages (30.0 MiB) read; writing the kernel and initramfs\n',
  ]);
});
