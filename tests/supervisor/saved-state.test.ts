// The desired state's writes land in the order they were asked for: a stop that follows a start
// at once must leave "stopped" on disk even when the start's write is the slower one (a daemon
// restarted afterwards would otherwise start the builder the user stopped).
import t from 'tap';
import type { DesiredState } from '../../daemon/controller.js';
import { SavedState } from '../../daemon/supervisor/saved-state.js';
import { MemoryStore, gate } from './fakes.js';

const quietLog = { info() {}, warn() {}, error() {} };

/** A store whose writes of `slow` wait for the test to open the gate. */
class SlowDesiredStore extends MemoryStore {
  readonly finished: DesiredState[] = [];
  constructor(
    private readonly slow: DesiredState,
    private readonly hold: Promise<void>,
  ) {
    super();
  }
  override async saveDesired(d: DesiredState): Promise<void> {
    if (d === this.slow) await this.hold;
    await super.saveDesired(d);
    this.finished.push(d);
  }
}

t.test('a slow write of the older state does not land after the newer one', async (t) => {
  const hold = gate();
  const store = new SlowDesiredStore('running', hold.promise);
  const saved = new SavedState(store, quietLog);
  const start = saved.saveDesired('running');
  const stop = saved.saveDesired('stopped');
  await new Promise((r) => setTimeout(r, 20));
  t.same(store.finished, [], 'the newer write waits for the older one');
  hold.open();
  await Promise.all([start, stop]);
  t.same(store.finished, ['running', 'stopped']);
  t.equal(store.desired, 'stopped', 'the file ends with the newest state');
});

t.test('a failed write is reported by its caller and does not stop the next one', async (t) => {
  class FailingOnce extends MemoryStore {
    failed = false;
    override async saveDesired(d: DesiredState): Promise<void> {
      if (!this.failed) {
        this.failed = true;
        throw new Error('disk full');
      }
      await super.saveDesired(d);
    }
  }
  const store = new FailingOnce();
  const saved = new SavedState(store, quietLog);
  const first = saved.saveDesired('running');
  const second = saved.saveDesired('stopped');
  await t.rejects(first, { message: 'could not save the desired state "running": disk full' });
  await second;
  t.equal(store.desired, 'stopped');
});
