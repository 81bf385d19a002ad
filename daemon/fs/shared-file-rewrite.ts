// Rewriting a file other programs also write (the machines file, nix.conf, the SSH config): an
// admin's `echo ... >> /etc/nix/machines` or another tool may append to it at the same moment.
// Their lines must survive our atomic replace: appended before our rename they are carried into
// the new file; appended to the old file just after it (by a writer that had it open), they are
// appended to the new one, possibly after a line another writer already put there. Bytes added
// at the end are carried only when they are another writer's lines, which the change leaves
// alone: a copy of our own block appended by a racing install is not (carrying it would leave
// two). A file changed in any other way is not replaced: the caller gets ChangedMeanwhileError
// and computes its change again from what is there now.
import * as fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic, type AtomicWriteOptions } from './atomic-write.js';

export class ChangedMeanwhileError extends Error {
  override readonly name = 'ChangedMeanwhileError';
}

/** After the rename, how long writers that opened the old file get to finish (ms, cumulative). */
const LATE_APPEND_CHECKS_MS = [0, 20, 100];

/**
 * Replaces `target`, whose content was `before` when the change was planned, with
 * `change(before)`. `change` must be what the caller would do to any content of the file (put
 * our block in, say); it decides whether bytes appended meanwhile can be carried.
 */
export async function rewriteSharedFile(
  target: string,
  before: string,
  change: (text: string) => string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const after = change(before);
  const old = await fs.open(target, 'r');
  try {
    const expected = Buffer.from(before);
    const current = await old.readFile();
    const carried = current.subarray(expected.length);
    const appendedOnly =
      current.length >= expected.length && current.subarray(0, expected.length).equals(expected);
    // What was appended must be left alone by the change: it is another writer's, not ours.
    const carriable =
      appendedOnly && (carried.length === 0 || change(current.toString()) === after + carried.toString());
    if (!carriable) {
      throw new ChangedMeanwhileError(
        `${target} was changed by another program while this change was prepared`,
      );
    }
    await writeFileAtomic(target, Buffer.concat([Buffer.from(after), carried]), opts);
    let seen = current.length;
    for (const ms of LATE_APPEND_CHECKS_MS) {
      if (ms > 0) await sleep(ms);
      const { size } = await old.stat();
      if (size <= seen) continue;
      const late = Buffer.alloc(size - seen);
      await old.read(late, 0, late.length, seen);
      // An append of another writer's lines, not a write of ours: it must not replace the file.
      await fs.appendFile(target, late);
      seen = size;
    }
  } finally {
    await old.close();
  }
}
