// The initramfs format the kernel unpacks: cpio "newc" (070701), every header field 8 hex digits,
// name and data each padded to 4 bytes, closed by "TRAILER!!!". Owner root, mtime 0: the same
// files always give the same bytes.

export type CpioEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; data: Buffer }
  | { path: string; type: 'symlink'; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function record(ino: number, mode: number, name: string, data: Buffer): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'latin1');
  return [header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)];
}

/** The archive, entries in the order given (parents before children is the caller's duty). */
export function writeCpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    const name = e.path.replace(/^\/+/, '');
    if (e.type === 'dir') parts.push(...record(i + 1, S_IFDIR | e.mode, name, Buffer.alloc(0)));
    else if (e.type === 'file') parts.push(...record(i + 1, S_IFREG | e.mode, name, e.data));
    else parts.push(...record(i + 1, S_IFLNK | 0o777, name, Buffer.from(e.target)));
  });
  parts.push(...record(0, 0, 'TRAILER!!!', Buffer.alloc(0)));
  return Buffer.concat(parts);
}
