// busybox's applet names, read from the binary itself (it may be another architecture's, so it
// cannot be run): a sorted, NUL-separated table that starts with "[" and "[[".

export function busyboxApplets(binary: Buffer): string[] {
  const start = binary.indexOf(Buffer.from('\0[\0[[\0', 'latin1'));
  if (start < 0) throw new Error('cannot find the applet table in busybox (no "[", "[[" names)');
  const names: string[] = [];
  for (const name of binary
    .subarray(start + 1, start + 1 + 65536)
    .toString('latin1')
    .split('\0')) {
    if (!/^[\][a-z0-9_.-]+$/.test(name)) break;
    names.push(name);
  }
  if (names.length < 100 || !names.includes('sh')) {
    throw new Error(
      `the applet table in busybox does not look like one (${names.length} names${names.includes('sh') ? '' : ', no sh'})`,
    );
  }
  return names;
}
