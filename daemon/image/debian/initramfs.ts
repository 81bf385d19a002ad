// The guest's root file system as cpio entries: a /usr-merged tree of the programs and libraries
// the closure found, busybox and its applet links, the kernel modules with their load order, and
// the guest's own contract (guest/init, guest/rootfs). Sorted by path, so the same inputs give
// the same archive.
import { posix } from 'node:path';
import type { CpioEntry } from './cpio.js';

export interface GuestFile {
  /** Path in the guest, without a leading "/". */
  path: string;
  data: Buffer;
  mode: number;
}

export interface InitramfsParts {
  /** Programs and libraries, at the root-relative path the packages ship them at. */
  files: GuestFile[];
  /** Names in usr/bin that are symlinks to nix (nix-store, nix-daemon, …). */
  nixLinks: string[];
  busybox: Buffer;
  applets: string[];
  kernelVersion: string;
  /** Module path below lib/modules/<version>/ → its (uncompressed) bytes. */
  modules: Map<string, Buffer>;
  /** Loaded first: what eth0 needs. */
  netModules: string[];
  baseModules: string[];
  diskModules: string[];
  /** Loaded with linuxkit.ssh=vsock only. */
  vsockModules: string[];
  /** guest/rootfs's files (path relative to it) and guest/init. */
  rootfs: GuestFile[];
  init: Buffer;
}

/** The /usr-merged spelling: /bin, /sbin, /lib and /lib64 all point into /usr. */
export function guestPath(path: string): string {
  return path.startsWith('usr/') ? path : `usr/${path}`;
}

function koPath(path: string): string {
  return path.replace(/\.ko\.(xz|zst|gz)$/, '.ko');
}

export function initramfsEntries(parts: InitramfsParts): CpioEntry[] {
  const tree = new Map<string, CpioEntry>();
  const dir = (path: string, mode = 0o755): void => {
    if (path === '.' || path === '') return;
    if (!tree.has(path)) {
      dir(posix.dirname(path));
      tree.set(path, { path, type: 'dir', mode });
    }
  };
  const file = (path: string, data: Buffer, mode: number): void => {
    dir(posix.dirname(path));
    tree.set(path, { path, type: 'file', data, mode });
  };
  const link = (path: string, target: string): void => {
    dir(posix.dirname(path));
    if (!tree.has(path)) tree.set(path, { path, type: 'symlink', target });
  };

  for (const d of [
    'usr/bin',
    'usr/sbin',
    'usr/lib',
    'usr/lib64',
    'dev',
    'proc',
    'sys',
    'run',
    'nix',
    'etc',
    'var/log',
    'mnt',
  ])
    dir(d);
  dir('tmp', 0o1777);
  dir('root', 0o700);
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) link(d, `usr/${d}`);

  for (const f of parts.files) file(guestPath(f.path), f.data, f.mode);
  for (const name of parts.nixLinks) link(`usr/bin/${name}`, 'nix');
  // busybox picks its applet from argv[0]; real programs (mke2fs) win over its applets.
  file('usr/bin/busybox', parts.busybox, 0o755);
  for (const applet of parts.applets) link(`usr/bin/${applet}`, '/usr/bin/busybox');
  if (parts.applets.includes('modprobe')) link('usr/sbin/modprobe', '/usr/bin/busybox');

  // busybox insmod reads plain .ko files; /init loads them in the order of these lists.
  const moduleDir = `usr/lib/modules/${parts.kernelVersion}`;
  for (const [path, data] of parts.modules) file(`${moduleDir}/${koPath(path)}`, data, 0o644);
  const list = (paths: string[]): Buffer => Buffer.from(paths.map((p) => `${koPath(p)}\n`).join(''));
  file('etc/linuxkit/modules.net', list(parts.netModules), 0o644);
  file('etc/linuxkit/modules.base', list(parts.baseModules), 0o644);
  file('etc/linuxkit/modules.disk', list(parts.diskModules), 0o644);
  file('etc/linuxkit/modules.vsock', list(parts.vsockModules), 0o644);
  file('etc/linuxkit/kernel-version', Buffer.from(`${parts.kernelVersion}\n`), 0o644);

  for (const f of parts.rootfs) file(f.path, f.data, f.path === 'etc/shadow' ? 0o600 : f.mode);
  file('init', parts.init, 0o755);

  return [...tree.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
