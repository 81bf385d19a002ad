// Handing files (keys) to the guest at boot. hyperkit has no fw_cfg, so they travel the way Linux
// allows with any boot loader: a second, uncompressed cpio archive appended to the initrd. The
// kernel unpacks every archive in the initrd, one after another, into the same root, so the guest
// finds `/guest-files/<name>` (VmSpec.guestFiles names, the same ones QEMU passes as fw_cfg
// `opt/<name>`). The boot copy lives in the state directory with mode 0600: it holds the host key.
import { constants } from 'node:fs';
import { chmod, copyFile, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GUEST_FILES_INITRD_DIR } from '../../image/guest-contract.js';

const NAME = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  name: string;
  /** 0o040000 | perms for a directory, 0o100000 | perms for a file. */
  mode: number;
  data?: Buffer;
}

/**
 * An uncompressed "newc" cpio archive (the only format the kernel's initramfs unpacker reads),
 * with zero times and owners so the same inputs give the same bytes.
 */
export function newcArchive(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (name: string, mode: number, data: Buffer, nlink: number) => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from(
      '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''),
      'ascii',
    );
    parts.push(header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length));
  };
  for (const e of entries) {
    const isDir = (e.mode & 0o170000) === 0o040000;
    push(e.name, e.mode, isDir ? Buffer.alloc(0) : (e.data ?? Buffer.alloc(0)), isDir ? 2 : 1);
  }
  push('TRAILER!!!', 0, Buffer.alloc(0), 1);
  return Buffer.concat(parts);
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

/** The archive of the guest files: their directories first (the unpacker creates no parents). */
export async function guestFilesArchive(files: Record<string, string>): Promise<Buffer> {
  const entries: CpioEntry[] = [{ name: GUEST_FILES_INITRD_DIR, mode: 0o040700 }];
  const dirs = new Set<string>();
  for (const name of Object.keys(files).sort()) {
    if (!NAME.test(name) || name.split('/').some((c) => c === '.' || c === '..')) {
      throw new Error(
        `guestFiles name ${JSON.stringify(name)} must be a relative path of [A-Za-z0-9._-] components`,
      );
    }
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${GUEST_FILES_INITRD_DIR}/${parts.slice(0, i).join('/')}`;
      if (!dirs.has(dir)) entries.push({ name: dir, mode: 0o040700 });
      dirs.add(dir);
    }
    let data: Buffer;
    try {
      data = await readFile(files[name]);
    } catch (err) {
      throw new Error(
        `guestFiles[${JSON.stringify(name)}]: cannot read ${files[name]}: ${(err as Error).message}`,
      );
    }
    entries.push({ name: `${GUEST_FILES_INITRD_DIR}/${name}`, mode: 0o100600, data });
  }
  return newcArchive(entries);
}

/**
 * Writes `target`: the image's initrd (if any), zero padding to a 512-byte boundary (the
 * unpacker skips zeros between archives and wants each archive 4-byte aligned), then the guest
 * files. Returns the initrd to boot: `initrd` itself when there are no guest files.
 */
export async function writeBootInitrd(
  initrd: string,
  files: Record<string, string>,
  target: string,
): Promise<string> {
  if (Object.keys(files).length === 0) return initrd;
  const archive = await guestFilesArchive(files);
  const tmp = join(dirname(target), `.${process.pid}.boot-initrd.tmp`);
  await rm(tmp, { force: true });
  try {
    if (initrd !== '') {
      // A clone where the filesystem can (APFS), a copy elsewhere; the image's initrd is read-only.
      await copyFile(initrd, tmp, constants.COPYFILE_FICLONE);
      // The copy takes the source's mode (0444 from a Nix store); it holds a key now.
      await chmod(tmp, 0o600);
    }
    const fh = await open(tmp, 'a', 0o600);
    try {
      const size = (await fh.stat()).size;
      await fh.write(Buffer.concat([Buffer.alloc((512 - (size % 512)) % 512), archive]));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return target;
}
