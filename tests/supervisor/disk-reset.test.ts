// linuxkitctl disk reset through the supervisor: refused while a VM runs or a start is under way,
// done while stopped or failed. Fake time and backend; the disk removal is a recorded stand-in.
import t from 'tap';
import { ConflictError } from '../../daemon/controller.js';
import { gate, harness, settle, type Harness } from './fakes.js';

const GIB = 1024 ** 3;

function withDisk(): { h: Harness; resets: string[] } {
  const resets: string[] = [];
  const h = harness({
    resetStoreDisk: async () => {
      resets.push('reset');
      return { path: '/state/nix-disk.raw', removedBytes: resets.length === 1 ? 2 * GIB : null };
    },
  });
  return { h, resets };
}

async function healthy(h: Harness): Promise<void> {
  await h.sup.init();
  await settle();
  await h.clock.advance(1000);
  t.equal(h.sup.status().state, 'running');
}

t.test('disk reset while running is refused and the disk is kept; after a stop it is done', async (t) => {
  const { h, resets } = withDisk();
  await healthy(h);
  await t.rejects(
    h.sup.resetDisk(),
    new ConflictError(
      'the builder is running: the store disk is reset only while the builder is stopped ' +
        '(linuxkitctl stop, then linuxkitctl disk reset)',
    ),
  );
  t.same(resets, [], 'nothing removed');

  await h.sup.stop();
  await settle();
  t.equal(h.sup.status().state, 'stopped');
  const done = await h.sup.resetDisk();
  t.match(done, { path: '/state/nix-disk.raw', removedBytes: 2 * GIB, status: { state: 'stopped' } });
  t.same(resets, ['reset']);
  t.match(h.events.at(-1), {
    type: 'disk-reset',
    message: 'removed the store disk /state/nix-disk.raw (2 GiB): the next boot formats a new one',
    removedBytes: 2 * GIB,
  });
  t.match(await h.sup.resetDisk(), { removedBytes: null }, 'again: nothing left to remove');
  t.match(h.events.at(-1), { message: 'no store disk at /state/nix-disk.raw: nothing to reset' });
  t.equal(h.sup.status().desired, 'stopped', 'a reset wants nothing: the builder stays stopped');
  t.equal(h.backend.started.length, 1);
});

t.test('disk reset during a start (image build under way) is refused', async (t) => {
  const { h, resets } = withDisk();
  const spec = gate();
  h.specGate.promise = spec.promise;
  await h.sup.init();
  await settle();
  t.equal(h.sup.status().state, 'starting');
  await t.rejects(h.sup.resetDisk(), { name: 'ConflictError', message: /^the builder is starting: / });
  t.same(resets, []);
  spec.open();
  await settle();
});

t.test('disk reset in failed is done, and the builder stays failed until start', async (t) => {
  const { h, resets } = withDisk();
  h.backend.startError = new Error('no hypervisor');
  await h.sup.init();
  await h.clock.advance(600_000);
  t.equal(h.sup.status().state, 'failed');
  await h.sup.resetDisk();
  t.same(resets, ['reset']);
  t.equal(h.sup.status().state, 'failed');
});
