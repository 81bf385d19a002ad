import t from 'tap';
import {
  blockMarkers,
  readManagedBlock,
  removeManagedBlock,
  upsertManagedBlock,
} from '../../daemon/host-files/managed-block.js';

const NAME = 'linuxkit-builder';
const { begin, end } = blockMarkers(NAME);

t.test('appends to a file of foreign lines and removes back to the same bytes', async (t) => {
  const foreign = 'ssh://other x86_64-linux - 4 1 - - -\n# a comment\n\n';
  const added = upsertManagedBlock(foreign, NAME, 'ssh-ng://linuxkit-builder x86_64-linux /k 1 1 - - AAAA\n');
  t.equal(added, `${foreign}${begin}\nssh-ng://linuxkit-builder x86_64-linux /k 1 1 - - AAAA\n${end}\n`);
  t.equal(removeManagedBlock(added, NAME), foreign);
});

t.test('a file without a final newline gets it back exactly', async (t) => {
  const foreign = 'ssh://other x86_64-linux';
  const added = upsertManagedBlock(foreign, NAME, 'line\n');
  t.ok(added.startsWith(foreign + '\n'));
  t.equal(removeManagedBlock(added, NAME), foreign);
  const updated = upsertManagedBlock(added, NAME, 'line2\n');
  t.equal(removeManagedBlock(updated, NAME), foreign);
});

t.test('updates in place, keeping lines after the block', async (t) => {
  const text = `a\n${begin}\nold\n${end}\nb\n`;
  const updated = upsertManagedBlock(text, NAME, 'new\n');
  t.equal(updated, `a\n${begin}\nnew\n${end}\nb\n`);
  t.equal(readManagedBlock(updated, NAME), 'new\n');
  t.equal(removeManagedBlock(updated, NAME), 'a\nb\n');
});

t.test('an empty or missing file', async (t) => {
  t.equal(readManagedBlock('', NAME), null);
  t.equal(removeManagedBlock('x\n', NAME), 'x\n');
  const added = upsertManagedBlock('', NAME, 'l');
  t.equal(added, `${begin}\nl\n${end}\n`);
  t.equal(removeManagedBlock(added, NAME), '');
});

t.test('a begin marker without its end is an error that changes nothing', async (t) => {
  t.throws(() => upsertManagedBlock(`${begin}\nx\n`, NAME, 'y\n'), /without its closing/);
});

t.test("the markers hold no ';': Nix splits machines specs on it before dropping comments", async (t) => {
  const { begin: b, end: e } = blockMarkers('linuxkit-nix');
  t.notMatch(b, /;/);
  t.notMatch(e, /;/);
  t.notMatch(b + ' [newline added]', /;/);
});

t.test(
  'a block with the earlier marker (with a ;) is found, updated to the new marker, and removed',
  async (t) => {
    const [legacy] = blockMarkers(NAME).legacyBegin;
    t.match(legacy, /;/);
    const old = `a\n${legacy}\nold\n${end}\nb\n`;
    t.equal(readManagedBlock(old, NAME), 'old\n');
    t.equal(
      upsertManagedBlock(old, NAME, 'old\n'),
      `a\n${begin}\nold\n${end}\nb\n`,
      'same body, new marker: a rewrite',
    );
    t.equal(removeManagedBlock(old, NAME), 'a\nb\n');
    const noNewline = `x\n${legacy} [newline added]\nold\n${end}\n`;
    t.equal(removeManagedBlock(noNewline, NAME), 'x');
  },
);
