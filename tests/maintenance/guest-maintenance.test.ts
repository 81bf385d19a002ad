// The maintenance runner against the real Supervisor (fake backend, probe and clock from the
// supervisor tests) and a simulated guest that answers the runner's commands: when it acts,
// what it reports as events and errors, and when it leaves the guest alone.
import t, { type Test } from 'tap';
import type { StateEvent } from '../../daemon/controller.js';
import {
  CHECK_COMMAND,
  FIRST_PASS_DELAY_MS,
  GuestMaintenance,
  maintenanceIntervalMs,
  SLEEP_WATCH_MS,
  wallClockJumped,
  type MaintenanceSettings,
} from '../../daemon/maintenance/guest-maintenance.js';
import type { GuestCommandResult } from '../../daemon/probe/guest-ssh.js';
import { harness, settle, type Harness } from '../supervisor/fakes.js';

/** A guest store and clock; its commands answer at once, on the fake clock. */
class SimGuest {
  sizeKiB = 512 * 1024;
  liveKiB = 10 * 1024;
  garbageKiB = 0;
  clockOffsetMs = 0;
  gcFails = false;
  clockFails = false;
  readonly commands: string[] = [];
  constructor(private readonly now: () => number) {}

  get availableKiB(): number {
    return this.sizeKiB - this.liveKiB - this.garbageKiB;
  }

  run = async (command: string): Promise<GuestCommandResult> => {
    this.commands.push(command);
    const ok = (stdout: string, stderr = ''): GuestCommandResult => ({
      stdout,
      stderr,
      code: 0,
      latencyMs: 5,
    });
    const epoch = () => Math.floor((this.now() + this.clockOffsetMs) / 1000);
    if (command === CHECK_COMMAND) {
      const used = this.liveKiB + this.garbageKiB;
      return ok(
        `Filesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs ${this.sizeKiB} ${used} ${this.availableKiB} ${Math.round((100 * used) / this.sizeKiB)}% /nix\n` +
          `@@linuxkit-nix date\n${epoch()}\n`,
      );
    }
    const set = /^date -u -s @(\d+) >\/dev\/null && date \+%s$/.exec(command);
    if (set && this.clockFails)
      return { stdout: '', stderr: 'date: cannot set date: Operation not permitted', code: 1, latencyMs: 5 };
    if (set) {
      this.clockOffsetMs = Number(set[1]) * 1000 - this.now();
      return ok(`${epoch()}\n`);
    }
    const gc = /^nix-store --gc --max-freed (\d+)$/.exec(command);
    if (gc) {
      if (this.gcFails)
        return {
          stdout: '',
          stderr: 'error: getting status of /nix/var/nix/gcroots: Permission denied',
          code: 1,
          latencyMs: 5,
        };
      const freedMiB = this.garbageKiB / 1024;
      const paths = this.garbageKiB > 0 ? 3 : 0;
      this.garbageKiB = 0;
      return ok(
        '',
        `finding garbage collector roots...\ndeleting garbage...\n${paths} store paths deleted, ${freedMiB.toFixed(2)} MiB freed\n`,
      );
    }
    throw new Error(`unexpected guest command ${command}`);
  };
}

interface Rig {
  h: Harness;
  guest: SimGuest;
  m: GuestMaintenance;
  settings: MaintenanceSettings;
  logged: string[];
  repairs(): StateEvent[];
}

async function rig(t: Test, over: Partial<MaintenanceSettings> = {}): Promise<Rig> {
  const logged: string[] = [];
  const log = {
    info: (_o: object, msg?: string) => logged.push(`info ${msg}`),
    warn: (_o: object, msg?: string) => logged.push(`warn ${msg}`),
    error: (_o: object, msg?: string) => logged.push(`error ${msg}`),
  };
  const h = harness({ log });
  const guest = new SimGuest(() => h.clock.now());
  const settings: MaintenanceSettings = {
    intervalMs: maintenanceIntervalMs({ intervalMs: 10_000, nixIntervalMs: 60_000 }),
    gc: { minFreeMiB: 100, maxFreeMiB: 200 },
    maxClockSkewMs: 3000,
    commandTimeoutMs: 10_000,
    ...over,
  };
  const m = new GuestMaintenance({
    host: h.sup,
    run: guest.run,
    settings: () => settings,
    log,
    clock: h.clock,
  });
  m.start();
  t.teardown(() => m.stop());
  await h.sup.init();
  await settle();
  return { h, guest, m, settings, logged, repairs: () => h.events.filter((e) => e.type === 'repair') };
}

t.test('a pass per Nix probe interval, and never closer than four probe intervals', async (t) => {
  t.equal(maintenanceIntervalMs({ intervalMs: 15_000, nixIntervalMs: 300_000 }), 300_000);
  t.equal(maintenanceIntervalMs({ intervalMs: 100_000, nixIntervalMs: 300_000 }), 400_000);
});

t.test('a wall clock that moved past the watch interval (a host sleep) is a jump', async (t) => {
  t.equal(wallClockJumped(15_000, 15_000, 3000), false, 'on time');
  t.equal(wallClockJumped(18_000, 15_000, 3000), false, 'late within the skew');
  t.equal(wallClockJumped(18_001, 15_000, 3000), true, 'later than that');
  t.equal(wallClockJumped(3_615_000, 15_000, 3000), true, 'an hour asleep');
  t.equal(wallClockJumped(-3001, 15_000, 3000), true, 'set back');
});

t.test(
  'after the host sleeps, the guest clock is checked and set at once, not a whole interval later',
  async (t) => {
    const r = await rig(t);
    await r.h.clock.advance(FIRST_PASS_DELAY_MS);
    t.equal(r.guest.commands.length, 1, 'the first pass');
    // An hour asleep: timers stand still, the wall clock runs on, the guest's clock falls behind.
    r.h.clock.sleep(3_600_000);
    r.guest.clockOffsetMs = -3_600_000;
    await r.h.clock.advance(SLEEP_WATCH_MS + FIRST_PASS_DELAY_MS);
    t.ok(SLEEP_WATCH_MS + FIRST_PASS_DELAY_MS < r.settings.intervalMs, 'well before the next scheduled pass');
    t.equal(r.guest.commands.length, 3, 'a check, then the clock set');
    t.match(r.guest.commands[2], /^date -u -s @\d+/);
    t.ok(Math.abs(r.guest.clockOffsetMs) < 1000, `guest clock now ${r.guest.clockOffsetMs} ms off`);
    t.ok(
      r.logged.includes(
        "info the host's clock jumped 3600 s (the host slept, or its clock was set): checking the guest's clock",
      ),
      'the jump is logged',
    );
  },
);

t.test(
  'a healthy builder gets a first pass soon after it becomes running, then one per interval',
  async (t) => {
    const r = await rig(t);
    t.equal(r.h.sup.status().state, 'running');
    t.same(r.guest.commands, [], 'nothing before the first-pass delay');
    await r.h.clock.advance(FIRST_PASS_DELAY_MS);
    t.same(r.guest.commands, [CHECK_COMMAND], 'one check: the store has room and the clock is right');
    await r.h.clock.advance(r.settings.intervalMs - 1);
    t.equal(r.guest.commands.length, 1);
    await r.h.clock.advance(1);
    t.equal(r.guest.commands.length, 2, 'the next one an interval later');
    t.same(r.repairs(), [], 'nothing to repair, nothing reported');
  },
);

t.test('a store below gc.minFreeMiB is collected, reported as a repair event and logged', async (t) => {
  const r = await rig(t);
  r.guest.garbageKiB = 450 * 1024; // 52 MiB free of 512
  await r.h.clock.advance(FIRST_PASS_DELAY_MS);
  t.same(r.guest.commands, [
    CHECK_COMMAND,
    `nix-store --gc --max-freed ${200 * 1048576 - 52 * 1048576}`,
    CHECK_COMMAND,
  ]);
  const [e] = r.repairs();
  t.match(e, {
    type: 'repair',
    action: 'gc',
    freeBeforeMiB: 52,
    freeAfterMiB: 502,
    summary: '3 store paths deleted, 450.00 MiB freed',
    message:
      /^collected garbage in the guest store: only 52 MiB free in the guest store, below gc\.minFreeMiB 100 MiB; 3 store paths deleted, 450\.00 MiB freed; 502 MiB free now$/,
  });
  t.ok(
    r.logged.some((l) => l.startsWith('info collected garbage in the guest store')),
    'the supervisor logged the event',
  );
  t.ok(
    r.logged.some((l) => l.startsWith('info collecting garbage in the guest: only 52 MiB free')),
    'and the runner the decision',
  );
  await r.h.clock.advance(r.settings.intervalMs);
  t.equal(
    r.guest.commands.filter((c) => c.startsWith('nix-store')).length,
    1,
    'no second collection with room to spare',
  );
  t.same(r.h.sup.status().errors, []);
});

t.test(
  'a guest clock an hour behind is set to the host time, reported, and left alone afterwards',
  async (t) => {
    const r = await rig(t);
    r.guest.clockOffsetMs = -3_600_000;
    await r.h.clock.advance(FIRST_PASS_DELAY_MS);
    t.equal(r.guest.commands.length, 2);
    t.match(r.guest.commands[1], /^date -u -s @\d+ >\/dev\/null && date \+%s$/);
    t.ok(Math.abs(r.guest.clockOffsetMs) < 1000, `guest clock now ${r.guest.clockOffsetMs} ms off`);
    const [e] = r.repairs();
    t.match(e, {
      type: 'repair',
      action: 'clock',
      message: /^set the guest clock to the host's: the guest clock is 3600 s behind the host; now within/,
    });
    t.ok((e.skewBeforeMs as number) < -3_598_000);
    t.ok(Math.abs(e.skewAfterMs as number) < 1500);
    await r.h.clock.advance(r.settings.intervalMs);
    t.equal(r.guest.commands.length, 3, 'the next pass only checks');
    t.equal(r.repairs().length, 1);
  },
);

t.test('a clock that cannot be set is an error in status until a later pass sets it', async (t) => {
  const r = await rig(t);
  r.guest.clockOffsetMs = -3_600_000;
  r.guest.clockFails = true;
  await r.h.clock.advance(FIRST_PASS_DELAY_MS);
  const err = r.h.sup.status().errors.find((x) => x.source === 'guest-clock');
  t.match(
    err?.message,
    /could not set the guest clock \(the guest clock is 3600 s behind the host\): date -s exited 1: date: cannot set date: Operation not permitted/,
  );
  t.same(r.repairs(), []);
  r.guest.clockFails = false;
  await r.h.clock.advance(r.settings.intervalMs);
  t.same(r.h.sup.status().errors, [], 'cleared once the clock is set');
  t.equal(r.repairs().length, 1);
});

t.test('a store that stays short after collecting is an error, not a collection every pass', async (t) => {
  const r = await rig(t);
  r.guest.liveKiB = 450 * 1024; // live paths: nothing to collect
  await r.h.clock.advance(FIRST_PASS_DELAY_MS);
  t.equal(r.guest.commands.filter((c) => c.startsWith('nix-store')).length, 1);
  const err = r.h.sup.status().errors.find((x) => x.source === 'guest-store');
  t.match(
    err?.message,
    /only 62 MiB free after collecting garbage \(gc\.minFreeMiB 100\): live paths take the rest/,
  );
  await r.h.clock.advance(r.settings.intervalMs * 3);
  t.equal(r.guest.commands.filter((c) => c.startsWith('nix-store')).length, 1, 'no futile collections');
  r.guest.garbageKiB = 20 * 1024; // a build left garbage: less free than after the last collection
  await r.h.clock.advance(r.settings.intervalMs);
  t.equal(
    r.guest.commands.filter((c) => c.startsWith('nix-store')).length,
    2,
    'collected again once it dropped',
  );
  r.guest.liveKiB = 10 * 1024;
  await r.h.clock.advance(r.settings.intervalMs);
  t.same(r.h.sup.status().errors, [], 'the error clears once there is room');
});

t.test('a failing collection is reported in status errors and logged', async (t) => {
  const r = await rig(t);
  r.guest.garbageKiB = 450 * 1024;
  r.guest.gcFails = true;
  await r.h.clock.advance(FIRST_PASS_DELAY_MS);
  const err = r.h.sup.status().errors.find((x) => x.source === 'guest-store');
  t.match(
    err?.message,
    /garbage collection in the guest failed .*exited 1: error: getting status of \/nix\/var\/nix\/gcroots: Permission denied/,
  );
  t.ok(
    r.logged.some((l) =>
      l.startsWith('warn guest maintenance failed: garbage collection in the guest failed'),
    ),
  );
  t.same(r.repairs(), []);
});

t.test('nothing runs in the guest while the builder is not healthy', async (t) => {
  const r = await rig(t);
  r.h.probe.healthy = false;
  r.h.backend.current!.exit(1);
  await settle();
  t.not(r.h.sup.status().state, 'running');
  const n = r.guest.commands.length;
  t.same(await r.m.runOnce(), { skipped: true });
  await r.h.clock.advance(r.settings.intervalMs * 2);
  t.equal(r.guest.commands.length, n, 'no commands');
});

t.test('a failing SSH command is logged as a warning and the schedule goes on', async (t) => {
  const r = await rig(t);
  let calls = 0;
  const flaky = async (c: string) => {
    if (calls++ === 0) throw new Error('ssh to root@127.0.0.1:31022 failed: connect ECONNREFUSED');
    return r.guest.run(c);
  };
  await r.m.stop();
  const m = new GuestMaintenance({
    host: r.h.sup,
    run: flaky,
    settings: () => r.settings,
    log: { info() {}, warn: (_o, msg) => r.logged.push(`warn ${msg}`) },
    clock: r.h.clock,
  });
  m.start();
  t.teardown(() => m.stop());
  await r.h.clock.advance(r.settings.intervalMs);
  t.ok(r.logged.some((l) => /^warn guest maintenance failed: ssh to .* ECONNREFUSED/.test(l)));
  await r.h.clock.advance(r.settings.intervalMs);
  t.equal(calls, 2, 'the next pass ran');
  t.same(r.guest.commands, [CHECK_COMMAND]);
  t.same(r.h.sup.status().errors, [], 'a transient SSH failure is no status error');
});

t.test('stop() ends the schedule', async (t) => {
  const r = await rig(t);
  await r.m.stop();
  await r.h.clock.advance(r.settings.intervalMs * 3);
  t.same(r.guest.commands, []);
});

t.test('a config edit brings the next pass forward, and its settings apply to it', async (t) => {
  const r = await rig(t);
  await r.h.clock.advance(FIRST_PASS_DELAY_MS);
  t.equal(r.guest.commands.length, 1);
  r.guest.garbageKiB = 100 * 1024; // 402 MiB free: fine for minFree 100
  r.settings.gc = { minFreeMiB: 450, maxFreeMiB: 480 };
  r.h.sup.configChanged({ needsRestart: false, keys: [] });
  await r.h.clock.advance(FIRST_PASS_DELAY_MS);
  t.equal(
    r.guest.commands.filter((c) => c.startsWith('nix-store --gc')).length,
    1,
    'collected a second after the edit',
  );
  t.match(r.repairs()[0], { action: 'gc', freeBeforeMiB: 402, freeAfterMiB: 502 });
});
