// The Debian mirrors a host's apt is set up with, read from its sources (deb822 `.sources` files
// or one-line `sources.list`): the builder's default when no `image.debian.mirror` is set.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDeb822 } from './deb822.js';

export interface AptMirrors {
  /** The archive's base URL (…/debian), or null when the sources name none. */
  mirror: string | null;
  /** The security archive's base URL (…/debian-security), or null. */
  securityMirror: string | null;
}

function place(found: AptMirrors, uri: string, suites: string[], wanted: string[] | undefined): void {
  if (wanted && !suites.some((s) => wanted.includes(s))) return;
  const url = uri.replace(/\/+$/, '');
  if (suites.some((s) => s.endsWith('-security'))) found.securityMirror ??= url;
  else found.mirror ??= url;
}

/**
 * Mirrors named by the given file texts (deb822 or one-line format; each text one file). With
 * `wanted`, only sources that carry one of those suites count (an Ubuntu or third-party source
 * does not serve Debian's bookworm).
 */
export function aptMirrors(texts: string[], wanted?: string[]): AptMirrors {
  const found: AptMirrors = { mirror: null, securityMirror: null };
  for (const text of texts) {
    const oneLine = text.split('\n').filter((l) => /^\s*deb\s/.test(l));
    if (oneLine.length > 0) {
      for (const line of oneLine) {
        const words = line
          .replace(/\[[^\]]*\]/, '')
          .trim()
          .split(/\s+/);
        if (words.length >= 3) place(found, words[1], [words[2]], wanted);
      }
      continue;
    }
    const withoutComments = text
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    for (const p of parseDeb822(withoutComments)) {
      if (!(p.Types ?? '').split(/\s+/).includes('deb') || !p.URIs) continue;
      place(found, p.URIs.split(/\s+/)[0], (p.Suites ?? '').split(/\s+/), wanted);
    }
  }
  return found;
}

/** The texts of the host's apt source files (`sources.list` and `sources.list.d/*.{list,sources}`); none off Debian. */
export async function readAptSources(aptDir = '/etc/apt'): Promise<Array<{ path: string; text: string }>> {
  const names = await readdir(join(aptDir, 'sources.list.d')).catch(() => [] as string[]);
  const paths = [
    join(aptDir, 'sources.list'),
    ...names
      .filter((n) => /\.(list|sources)$/.test(n))
      .sort()
      .map((n) => join(aptDir, 'sources.list.d', n)),
  ];
  const files = await Promise.all(
    paths.map(async (path) => ({ path, text: await readFile(path, 'utf8').catch(() => null) })),
  );
  return files.filter((f): f is { path: string; text: string } => f.text !== null);
}
