// The compressions a .deb member, a Packages index or a kernel can use, all in Node: xz through a
// WebAssembly decoder (no native build, nothing fetched at install), zstd in plain JavaScript,
// gzip through zlib.
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import xzDecompressPackage from 'xz-decompress';

const { XzReadableStream } = xzDecompressPackage;

export type Compression = 'xz' | 'zst' | 'gz' | 'none';

export function compressionOfName(name: string): Compression {
  if (name.endsWith('.xz')) return 'xz';
  if (name.endsWith('.zst')) return 'zst';
  if (name.endsWith('.gz')) return 'gz';
  return 'none';
}

export async function xzDecompress(data: Buffer): Promise<Buffer> {
  const stream = new XzReadableStream(
    new Blob([new Uint8Array(data)]).stream() as ConstructorParameters<typeof XzReadableStream>[0],
  );
  return Buffer.from(await new Response(stream as unknown as ReadableStream).arrayBuffer());
}

export async function decompress(data: Buffer, how: Compression, label: string): Promise<Buffer> {
  try {
    switch (how) {
      case 'xz':
        return await xzDecompress(data);
      case 'zst':
        return Buffer.from(zstdDecompress(data));
      case 'gz':
        return gunzipSync(data);
      case 'none':
        return data;
    }
  } catch (err) {
    throw new Error(`${label}: ${how} data does not decompress: ${(err as Error).message}`);
  }
}
