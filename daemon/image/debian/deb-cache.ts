// .deb files kept by content: `<dir>/<sha256>.deb`. A download is checked against the SHA256 the
// signed index gives and only then renamed into place, so the cache never holds a partial or
// unverified file, and a cached file is a hit without any network.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../fs/atomic-write.js';
import { sha256, type HttpGet, type IndexedPackage } from './archive.js';

export function debUrl(p: IndexedPackage): string {
  return `${p.baseUrl}/${p.filename}`;
}

export async function fetchDeb(p: IndexedPackage, dir: string, get: HttpGet): Promise<Buffer> {
  const path = join(dir, `${p.sha256}.deb`);
  const cached = await readFile(path).catch(() => null);
  if (cached && sha256(cached) === p.sha256) return cached;
  const url = debUrl(p);
  const data = await get(url);
  const actual = sha256(data);
  if (actual !== p.sha256)
    throw new Error(
      `${url}: SHA256 ${actual} does not match ${p.sha256} from the Packages index of ${p.suite}`,
    );
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(path, data);
  return data;
}
