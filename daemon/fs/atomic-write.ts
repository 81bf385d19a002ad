// Every file the product writes goes through here, so a crash or a full disk leaves either the
// old file or the new one, never a torn mix (vm.json, desired.json, the machines file, config).
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the result. Default: the existing file's mode, else 0o666 minus the umask. */
  mode?: number;
  /**
   * Fail with EEXIST instead of replacing an existing file. The new file appears through
   * link(2), which never clobbers, so two writers racing cannot both win.
   */
  exclusive?: boolean;
}

// Names longer than this cannot take the temp-file prefix and suffix within NAME_MAX (255).
const MAX_BASE_IN_TEMP_NAME = 200;

function tempPathFor(target: string): string {
  const base = path.basename(target).slice(0, MAX_BASE_IN_TEMP_NAME);
  const unique = `${process.pid}.${randomBytes(6).toString('hex')}`;
  return path.join(path.dirname(target), `.${base}.${unique}.tmp`);
}

async function existingMode(target: string): Promise<number | undefined> {
  try {
    const st = await fs.stat(target);
    return st.isFile() ? st.mode & 0o7777 : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

// Makes the rename itself durable. Some filesystems cannot fsync a directory; the rename has
// already happened then, so that is not a failure of the write.
async function fsyncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, fsConstants.O_RDONLY);
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (
      code !== 'EINVAL' &&
      code !== 'ENOTSUP' &&
      code !== 'EISDIR' &&
      code !== 'EPERM' &&
      code !== 'EBADF'
    ) {
      throw err;
    }
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `data` to `target` atomically: a unique temp file in the same directory is written,
 * fsynced and renamed over the target, then the directory is fsynced. On any failure the temp
 * file is removed and the previous content of `target` is untouched. Symlinks at `target` are
 * replaced, not followed.
 */
export async function writeFileAtomic(
  target: string,
  data: string | Buffer,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const mode = opts.mode ?? (opts.exclusive ? undefined : await existingMode(target));
  const temp = tempPathFor(target);
  let handle: fs.FileHandle | undefined;
  let tempExists = false;
  try {
    handle = await fs.open(temp, 'wx', mode ?? 0o666);
    tempExists = true;
    // open() applied the umask; an explicit or inherited mode must be exact.
    if (mode !== undefined) await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (opts.exclusive) {
      await fs.link(temp, target);
      tempExists = false;
      // The target is complete once linked; a leftover temp name is only litter.
      await fs.unlink(temp).catch(() => undefined);
    } else {
      await fs.rename(temp, target);
      tempExists = false;
    }
    await fsyncDirectory(path.dirname(target));
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    if (tempExists) await fs.unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** `writeFileAtomic` for JSON state files: two-space indent and a final newline. */
export async function writeJsonAtomic(
  target: string,
  value: unknown,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  await writeFileAtomic(target, `${JSON.stringify(value, null, 2)}\n`, opts);
}
