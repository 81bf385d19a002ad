import t from 'tap';
t.test('the toolchain runs TypeScript tests', async (t) => {
  t.equal(1 + 1, 2);
});
