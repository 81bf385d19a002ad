// Reads a Debian suite's package index from a mirror and checks it end to end: InRelease against
// the archive signing keys (OpenPGP), the Packages file against InRelease's SHA256 line.
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';
import { parseDeb822, type Deb822Paragraph } from './deb822.js';
import { decompress, compressionOfName } from './decompress.js';

export type HttpGet = (url: string) => Promise<Buffer>;

/** Plain HTTP(S) GET; a status other than 200 is an error naming the URL. */
export const httpGet: HttpGet = async (url) => {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    const cause = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
    throw new Error(`cannot reach ${url}: ${cause}`);
  }
  if (res.status !== 200) throw new Error(`${url} answered HTTP ${res.status}, expected 200`);
  return Buffer.from(await res.arrayBuffer());
};

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface SuiteSource {
  /** The archive's base URL, e.g. …/debian or …/debian-security. */
  baseUrl: string;
  suite: string;
}

/** One binary package of the index, with where it came from. */
export interface IndexedPackage {
  name: string;
  version: string;
  architecture: string;
  filename: string;
  sha256: string;
  size: number;
  depends: string[][];
  suite: string;
  baseUrl: string;
}

/**
 * The signed text of an InRelease file, when a signature by one of `armoredKeys` verifies; else an
 * error naming `label`. Signatures by keys not in the keyring (an older release's) are ignored.
 */
export async function verifyInRelease(
  inRelease: string,
  armoredKeys: string,
  label: string,
): Promise<string> {
  let message: openpgp.CleartextMessage;
  try {
    message = await openpgp.readCleartextMessage({ cleartextMessage: inRelease });
  } catch (err) {
    throw new Error(`${label} is not an OpenPGP clear-signed file: ${(err as Error).message}`);
  }
  const verificationKeys = await openpgp.readKeys({ armoredKeys });
  const result = await openpgp.verify({ message, verificationKeys });
  const known = new Set(verificationKeys.flatMap((k) => k.getKeyIDs().map((id) => id.toHex())));
  let good = 0;
  for (const sig of result.signatures) {
    if (!known.has(sig.keyID.toHex())) continue;
    try {
      await sig.verified;
      good++;
    } catch (err) {
      throw new Error(
        `${label}: bad OpenPGP signature by key ${sig.keyID.toHex()}: ${(err as Error).message}`,
      );
    }
  }
  if (good === 0) {
    const ids = result.signatures.map((s) => s.keyID.toHex()).join(', ') || 'none';
    throw new Error(
      `${label} is signed by none of the archive keys in the repository (signatures by: ${ids})`,
    );
  }
  return result.data as string;
}

/** The "SHA256:" list of a Release text: path → { sha256, size }. */
export function releaseChecksums(release: string): Map<string, { sha256: string; size: number }> {
  const [fields] = parseDeb822(release);
  const out = new Map<string, { sha256: string; size: number }>();
  for (const line of (fields?.SHA256 ?? '').split('\n')) {
    const [sum, size, path] = line.trim().split(/\s+/);
    if (sum && size && path) out.set(path, { sha256: sum, size: Number(size) });
  }
  if (out.size === 0) throw new Error('the Release text has no SHA256 list');
  return out;
}

/** A Depends/Pre-Depends value as alternatives of package names (versions and :any dropped). */
export function parseDepends(value: string | undefined): string[][] {
  if (!value) return [];
  return value
    .split(',')
    .map((group) =>
      group
        .split('|')
        .map((alt) => alt.trim().split(/[\s(:]/)[0])
        .filter(Boolean),
    )
    .filter((g) => g.length > 0);
}

export function indexedPackage(p: Deb822Paragraph, source: SuiteSource): IndexedPackage {
  return {
    name: p.Package,
    version: p.Version,
    architecture: p.Architecture,
    filename: p.Filename,
    sha256: p.SHA256,
    size: Number(p.Size),
    depends: [...parseDepends(p['Pre-Depends']), ...parseDepends(p.Depends)],
    suite: source.suite,
    baseUrl: source.baseUrl,
  };
}

/** Fetches and checks one suite's main/binary-<arch> index. */
export async function fetchSuiteIndex(
  source: SuiteSource,
  debArch: string,
  armoredKeys: string,
  get: HttpGet,
): Promise<IndexedPackage[]> {
  const dists = `${source.baseUrl}/dists/${source.suite}`;
  const inReleaseUrl = `${dists}/InRelease`;
  const release = await verifyInRelease(
    (await get(inReleaseUrl)).toString('utf8'),
    armoredKeys,
    inReleaseUrl,
  );
  const sums = releaseChecksums(release);
  const wanted = [`main/binary-${debArch}/Packages.xz`, `main/binary-${debArch}/Packages.gz`].find((p) =>
    sums.has(p),
  );
  if (!wanted) throw new Error(`${inReleaseUrl} lists no main/binary-${debArch}/Packages.xz or .gz`);
  const url = `${dists}/${wanted}`;
  const packed = await get(url);
  const expected = sums.get(wanted)!;
  const actual = sha256(packed);
  if (actual !== expected.sha256) {
    throw new Error(`${url}: SHA256 ${actual} does not match ${expected.sha256} from ${inReleaseUrl}`);
  }
  const text = (await decompress(packed, compressionOfName(wanted), url)).toString('utf8');
  return parseDeb822(text).map((p) => indexedPackage(p, source));
}
