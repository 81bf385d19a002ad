// The pure halves of guest maintenance: reading df and date output, and deciding when to
// collect garbage or set the guest clock. Table rows; no VM.
import t from 'tap';
import {
  decideClockCorrection,
  formatSkew,
  measureSkew,
  parseGuestEpoch,
  setClockCommand,
} from '../../daemon/maintenance/clock-skew.js';
import { CHECK_COMMAND, parseCheckOutput } from '../../daemon/maintenance/guest-maintenance.js';
import { decideGc, gcCommand, parseDfOutput, parseGcSummary } from '../../daemon/maintenance/store-space.js';

const BUSYBOX_DF =
  'Filesystem           1024-blocks    Used Available Capacity Mounted on\ntmpfs                   503264    153680    349584  31% /nix\n';
const GNU_DF =
  'Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda        20466256  1034256  18367040       6% /nix\n';

t.test('df -Pk output is parsed, busybox and GNU alike', async (t) => {
  t.same(parseDfOutput(BUSYBOX_DF), {
    filesystem: 'tmpfs',
    sizeKiB: 503264,
    usedKiB: 153680,
    availableKiB: 349584,
    mountedOn: '/nix',
  });
  t.same(parseDfOutput(GNU_DF), {
    filesystem: '/dev/vda',
    sizeKiB: 20466256,
    usedKiB: 1034256,
    availableKiB: 18367040,
    mountedOn: '/nix',
  });
  t.equal(
    parseDfOutput('Filesystem 1K-blocks Used Available Use% Mounted on\nmy disk 10 5 5 50% /mnt/my store\n')
      .mountedOn,
    '/mnt/my store',
  );
  t.equal(
    parseDfOutput('Filesystem 1024-blocks Used Available Capacity Mounted on\nnone 0 0 0 - /nix\n')
      .availableKiB,
    0,
  );
  t.equal(
    parseDfOutput(`warning: something\n${BUSYBOX_DF}`).availableKiB,
    349584,
    'noise before the header is skipped',
  );
});

t.test('df output that cannot be read is an error naming what came', async (t) => {
  t.throws(() => parseDfOutput(''), /df printed no header line/);
  t.throws(
    () => parseDfOutput('df: /nix/store: No such file or directory\n'),
    /df printed no header line: "df: \/nix\/store/,
  );
  t.throws(
    () => parseDfOutput('Filesystem 512-blocks Used Available Capacity Mounted on\ntmpfs 1 1 1 1% /nix\n'),
    /did not count in KiB/,
  );
  t.throws(
    () => parseDfOutput('Filesystem 1024-blocks Used Available Capacity Mounted on\n'),
    /no filesystem line/,
  );
  t.throws(
    () => parseDfOutput('Filesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs x y z 1% /nix\n'),
    /no filesystem line/,
  );
});

t.test('garbage is collected below gc.minFreeMiB, up to gc.maxFreeMiB', async (t) => {
  const rows: Array<[string, number, { minFreeMiB: number; maxFreeMiB: number }, boolean, number | null]> = [
    ['plenty free', 1024 * 1024, { minFreeMiB: 256, maxFreeMiB: 1024 }, false, null],
    ['exactly the minimum is enough', 256 * 1024, { minFreeMiB: 256, maxFreeMiB: 1024 }, false, null],
    [
      '1 KiB under the minimum collects up to the maximum',
      256 * 1024 - 1,
      { minFreeMiB: 256, maxFreeMiB: 1024 },
      true,
      1024 * 1048576 - (256 * 1024 - 1) * 1024,
    ],
    ['an empty store collects the maximum', 0, { minFreeMiB: 256, maxFreeMiB: 1024 }, true, 1024 * 1048576],
    [
      'a maximum below the minimum counts as the minimum',
      100 * 1024,
      { minFreeMiB: 256, maxFreeMiB: 10 },
      true,
      156 * 1048576,
    ],
    ['minFreeMiB 0 turns collection off', 0, { minFreeMiB: 0, maxFreeMiB: 1024 }, false, null],
  ];
  for (const [name, availableKiB, thresholds, collect, maxFreed] of rows) {
    const d = decideGc({ availableKiB }, thresholds);
    t.equal(d.collect, collect, name);
    if (d.collect) {
      t.equal(d.maxFreedBytes, maxFreed, `${name}: max-freed`);
      t.match(d.reason, /below gc\.minFreeMiB/);
      t.equal(gcCommand(d), `nix-store --gc --max-freed ${maxFreed}`);
    }
  }
  t.match(decideGc({ availableKiB: 0 }, { minFreeMiB: 0, maxFreeMiB: 0 }).reason, /off/);
});

t.test("nix-store --gc's summary line is read", async (t) => {
  t.same(
    parseGcSummary(
      'finding garbage collector roots...\ndeleting garbage...\n3 store paths deleted, 150.00 MiB freed\n',
    ),
    { paths: 3, freed: '150.00 MiB' },
  );
  t.same(parseGcSummary('0 store paths deleted, 0.00 MiB freed'), { paths: 0, freed: '0.00 MiB' });
  t.equal(parseGcSummary('error: cannot connect'), null);
});

t.test("the guest's date +%s is read", async (t) => {
  t.equal(parseGuestEpoch('1767225600\n'), 1767225600);
  t.equal(parseGuestEpoch('  1767225600  '), 1767225600);
  t.equal(parseGuestEpoch('Sat Jan  1 00:00:00 UTC 2026\n1767225600\n'), 1767225600, 'the last line counts');
  t.throws(() => parseGuestEpoch(''), /printed no epoch seconds/);
  t.throws(() => parseGuestEpoch('date: invalid date\n'), /printed no epoch seconds: "date: invalid date/);
  t.throws(() => parseGuestEpoch('1.5\n'), /no epoch seconds/);
});

t.test('the skew is bounded by the round trip and the one-second resolution', async (t) => {
  const host = 1_767_225_600_000;
  // The guest printed its seconds somewhere in the 400 ms round trip.
  const inSync = measureSkew({
    guestEpochS: 1_767_225_600,
    hostBeforeMs: host - 200,
    hostAfterMs: host + 200,
  });
  t.same(inSync, { minMs: -200, maxMs: 1200, skewMs: 500 });
  const behind = measureSkew({
    guestEpochS: 1_767_225_600 - 3600,
    hostBeforeMs: host - 200,
    hostAfterMs: host + 200,
  });
  t.equal(behind.minMs, -3_600_200);
  t.equal(behind.maxMs, -3_598_800);
  t.equal(behind.skewMs, -3_599_500);
  t.throws(() => measureSkew({ guestEpochS: 1, hostBeforeMs: 2, hostAfterMs: 1 }), /must not be before/);
});

t.test('the clock is set only when it is certainly off by more than the limit', async (t) => {
  const rows: Array<[string, { minMs: number; maxMs: number }, boolean, RegExp]> = [
    ['in sync', { minMs: -200, maxMs: 1200 }, false, /within 1\.2 s/],
    ['an hour behind', { minMs: -3_600_200, maxMs: -3_598_800 }, true, /3600 s behind the host/],
    ['an hour ahead', { minMs: 3_598_800, maxMs: 3_600_200 }, true, /3600 s ahead of the host/],
    ['4 s behind with a short round trip', { minMs: -4_500, maxMs: -3_500 }, true, /behind/],
    [
      'maybe 4 s behind, but the round trip was slow',
      { minMs: -4_500, maxMs: -2_000 },
      false,
      /within 4\.5 s/,
    ],
    ['just at the limit is left alone', { minMs: -3_000, maxMs: -3_000 }, false, /within 3 s/],
  ];
  for (const [name, b, correct, reason] of rows) {
    const d = decideClockCorrection({ ...b, skewMs: Math.round((b.minMs + b.maxMs) / 2) }, 3000);
    t.equal(d.correct, correct, name);
    t.match(d.reason, reason, `${name}: ${d.reason}`);
  }
});

t.test('the clock command aims at the moment it will run', async (t) => {
  t.same(setClockCommand(1_767_225_600_000, 0), {
    epochS: 1_767_225_600,
    command: 'date -u -s @1767225600 >/dev/null && date +%s',
  });
  t.equal(
    setClockCommand(1_767_225_600_000, 700).epochS,
    1_767_225_601,
    'rounded to the nearest second after the delay',
  );
  t.equal(setClockCommand(1_767_225_600_000, -5).epochS, 1_767_225_600, 'a negative delay counts as none');
  t.equal(formatSkew(-3_600_000), '3600 s');
  t.equal(formatSkew(2500), '2.5 s');
  t.equal(formatSkew(850), '850 ms');
});

t.test('the check command prints df, then a marker, then the date', async (t) => {
  t.match(CHECK_COMMAND, /^df -Pk \/nix\/store; echo '.+'; date \+%s$/);
  const parts = parseCheckOutput(`${BUSYBOX_DF}@@linuxkit-nix date\n1767225600\n`);
  t.equal(parseDfOutput(parts.df).availableKiB, 349584);
  t.equal(parseGuestEpoch(parts.date), 1767225600);
  t.throws(() => parseCheckOutput(BUSYBOX_DF), /no date marker/);
});
