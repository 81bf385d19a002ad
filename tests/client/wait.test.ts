// start --wait's loop: an event that arrives while a status read is on its way makes the loop read
// again at once. Before, it woke nothing, and the healthy answer waited for the next poll.
import t from 'tap';
import type { DaemonStatus, LinuxkitClient, StateEvent } from '../../client/api-client.js';
import { waitUntilHealthy } from '../../client/wait.js';
import { sampleStatus } from '../api/fixtures/fake-controller.js';

const booting = sampleStatus({ state: 'starting', healthy: false });
const healthy = sampleStatus({ state: 'running', healthy: true });

/** A client whose status reads answer from `answers` in turn, each after running `during`. */
function scriptedClient(answers: DaemonStatus[], during: (read: number, emit: () => void) => void) {
  let emit = (): void => {};
  let reads = 0;
  const client: Pick<LinuxkitClient, 'status' | 'events'> = {
    async status() {
      const read = reads++;
      during(read, emit);
      await new Promise((r) => setImmediate(r));
      return answers[Math.min(read, answers.length - 1)]!;
    },
    events(onEvent: (event: StateEvent) => void) {
      emit = () => onEvent({ at: new Date().toISOString(), type: 'state' } as StateEvent);
      return { close() {}, done: Promise.resolve() };
    },
  };
  return { client, reads: () => reads, emit: () => emit() };
}

/** Fails instead of hanging when the loop sleeps through the event (the poll is 30 s here). */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: the event was lost`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

t.test('an event during a status read is not lost: the status is read again at once', async (t) => {
  // The first read answers "booting", but the builder turns healthy (its event) while that
  // answer is on its way.
  const { client, reads } = scriptedClient([booting, healthy], (read, emit) => {
    if (read === 0) emit();
  });
  const outcome = await within(
    5_000,
    waitUntilHealthy(client, { notPid: null, timeoutMs: 60_000, pollMs: 30_000 }),
  );
  t.equal(outcome.ok, true);
  t.equal(reads(), 2, 'one more read, right after the first');
});

t.test('an event while the loop waits wakes it', async (t) => {
  const { client, emit } = scriptedClient([booting, healthy], () => {});
  const waiting = waitUntilHealthy(client, { notPid: null, timeoutMs: 60_000, pollMs: 30_000 });
  setTimeout(emit, 50);
  t.equal((await within(5_000, waiting)).ok, true);
});

t.test('without events, the status is polled', async (t) => {
  const { client, reads } = scriptedClient([booting, booting, healthy], () => {});
  const outcome = await within(
    5_000,
    waitUntilHealthy(client, { notPid: null, timeoutMs: 60_000, pollMs: 20 }),
  );
  t.equal(outcome.ok, true);
  t.equal(reads(), 3);
});
