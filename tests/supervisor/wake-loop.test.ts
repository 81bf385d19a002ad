import t from 'tap';
import { WakeLoop } from '../../daemon/supervisor/wake-loop.js';
import { FakeClock, settle } from './fakes.js';

/** A step that records itself and waits for the test to let it finish. */
function gatedStep() {
  const gates: Array<() => void> = [];
  let steps = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  const step = async () => {
    steps++;
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    await new Promise<void>((r) => gates.push(r));
    concurrent--;
  };
  return {
    step,
    release: () => gates.shift()?.(),
    get steps() {
      return steps;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
  };
}

t.test('wake-ups during a step fold into one more step, never a second one at the same time', async (t) => {
  const g = gatedStep();
  const loop = new WakeLoop(new FakeClock(), g.step);
  void loop.wake();
  await settle();
  void loop.wake();
  void loop.wake();
  void loop.wake();
  g.release();
  await settle();
  g.release();
  await settle();
  t.equal(g.steps, 2);
  t.equal(g.maxConcurrent, 1);
});

t.test('wake resolves once the step has decided, before its actions finish', async (t) => {
  let loop!: WakeLoop;
  let finishActions!: () => void;
  let actionsDone = false;
  loop = new WakeLoop(new FakeClock(), async () => {
    loop.decided();
    await new Promise<void>((r) => (finishActions = r));
    actionsDone = true;
  });
  await loop.wake();
  t.equal(actionsDone, false);
  finishActions();
  await settle();
  t.equal(actionsDone, true);
});

t.test('a timed wake-up replaces the previous one; null cancels it', async (t) => {
  const clock = new FakeClock();
  let steps = 0;
  const loop = new WakeLoop(clock, async () => void steps++);
  loop.wakeAfter(1000);
  loop.wakeAfter(5000);
  await clock.advance(4999);
  t.equal(steps, 0, 'the first timer was replaced');
  await clock.advance(1);
  t.equal(steps, 1);
  loop.wakeAfter(1000);
  loop.wakeAfter(null);
  await clock.advance(10_000);
  t.equal(steps, 1);
});

t.test('close waits for the running step, then no wake-up runs another', async (t) => {
  const clock = new FakeClock();
  const g = gatedStep();
  const loop = new WakeLoop(clock, g.step);
  void loop.wake();
  await settle();
  loop.wakeAfter(100);
  let closed = false;
  const closing = loop.close().then(() => (closed = true));
  await settle();
  t.equal(closed, false, 'still waiting for the step');
  g.release();
  await closing;
  await loop.wake();
  await clock.advance(1000);
  t.equal(g.steps, 1);
  t.equal(loop.isClosed, true);
});

t.test('a step that throws does not stop the loop', async (t) => {
  let steps = 0;
  const loop = new WakeLoop(new FakeClock(), async () => {
    steps++;
    throw new Error('boom');
  });
  await loop.wake();
  await loop.wake();
  t.equal(steps, 2);
});
