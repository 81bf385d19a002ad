import t from 'tap';
import { backoffDelay, type BackoffPolicy } from '../../daemon/reconciler/backoff.js';

const policy: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2, jitter: 0.2 };

const rows: Array<[string, number, Partial<BackoffPolicy>, number, number]> = [
  // name, failures, policy overrides, random, expected ms
  ['the first failure waits the initial delay', 1, {}, 0.5, 1000],
  ['each further failure multiplies the delay', 2, {}, 0.5, 2000],
  ['the fourth failure waits initial × multiplier³', 4, {}, 0.5, 8000],
  ['a multiplier of 3 grows faster', 3, { multiplier: 3 }, 0.5, 9000],
  ['the delay stops growing at the cap', 7, {}, 0.5, 60_000],
  ['a huge failure count stays at the cap instead of overflowing', 5000, {}, 0.5, 60_000],
  ['jitter at its low end removes the jitter fraction', 2, {}, 0, 1600],
  ['jitter near its high end adds up to the jitter fraction', 2, {}, 0.999999, 2400],
  ['jitter never pushes the delay above the cap', 10, {}, 0.999999, 60_000],
  ['jitter may bring a capped delay below the cap', 10, {}, 0, 48_000],
  ['no jitter configured: random does not matter', 2, { jitter: 0 }, 0.9, 2000],
  ['a failure count below one is treated as the first', 0, {}, 0.5, 1000],
  ['a zero initial delay still waits a millisecond, never zero', 3, { initialDelayMs: 0 }, 0.5, 1],
  ['a random number outside [0,1) is clamped', 1, {}, 7, 1200],
  ['NaN for random counts as no jitter', 1, {}, Number.NaN, 1000],
];
for (const [name, failures, over, random, want] of rows) {
  t.test(name, async (t) => {
    t.equal(backoffDelay(failures, { ...policy, ...over }, random), want);
  });
}

t.test('the delay never shrinks as failures grow (fixed random)', async (t) => {
  for (const random of [0, 0.3, 0.5, 0.99]) {
    let previous = 0;
    for (let n = 1; n <= 12; n++) {
      const d = backoffDelay(n, policy, random);
      t.ok(d >= previous, `failure ${n} at random ${random}: ${d} >= ${previous}`);
      previous = d;
    }
  }
});
