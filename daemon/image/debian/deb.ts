// A .deb's file tree, read in Node: the ar archive's data.tar.{xz,zst,gz} member, untarred with
// tar-stream. Paths come out without the leading "./".
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { parseAr } from './ar.js';
import { compressionOfName, decompress } from './decompress.js';

export type DebEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; data: Buffer }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'hardlink'; target: string };

function normalize(path: string): string {
  return path.replace(/^\.?\/+/, '').replace(/\/+$/, '');
}

export async function untar(tar: Buffer, label: string): Promise<DebEntry[]> {
  const entries: DebEntry[] = [];
  const extract = tarStream.extract();
  Readable.from([tar]).pipe(extract);
  for await (const entry of extract) {
    const h = entry.header;
    const path = normalize(h.name);
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (path === '') continue;
    const mode = (h.mode ?? 0o644) & 0o7777;
    if (h.type === 'directory') entries.push({ path, type: 'dir', mode });
    else if (h.type === 'file' || h.type === 'contiguous-file')
      entries.push({ path, type: 'file', mode, data: Buffer.concat(chunks) });
    else if (h.type === 'symlink') entries.push({ path, type: 'symlink', target: h.linkname ?? '' });
    else if (h.type === 'link') entries.push({ path, type: 'hardlink', target: normalize(h.linkname ?? '') });
    else throw new Error(`${label}: ${path} is a ${h.type}, which a guest image cannot hold`);
  }
  return entries;
}

export async function unpackDeb(deb: Buffer, label: string): Promise<DebEntry[]> {
  const data = parseAr(deb, label).find((m) => m.name.startsWith('data.tar'));
  if (!data) throw new Error(`${label} has no data.tar member: not a Debian package`);
  const tar = await decompress(data.data, compressionOfName(data.name), `${label} ${data.name}`);
  return untar(tar, label);
}
