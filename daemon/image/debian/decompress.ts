// The compressions a .deb member, a Packages index or a kernel can use, all in Node: xz through
// liblzma (`lzma-native`, prebuilt for macOS and Linux on x64 and arm64; it has the x86 BCJ filter
// Debian's x86_64 kernel payload needs), zstd in plain JavaScript, gzip through zlib.
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import lzma from 'lzma-native';

export type Compression = 'xz' | 'zst' | 'gz' | 'none';

export function compressionOfName(name: string): Compression {
  if (name.endsWith('.xz')) return 'xz';
  if (name.endsWith('.zst')) return 'zst';
  if (name.endsWith('.gz')) return 'gz';
  return 'none';
}

/** The compression a buffer starts with, by its magic bytes; 'none' when it has none of ours. */
export function compressionOfData(data: Buffer): Compression {
  if (data.length >= 6 && data.subarray(0, 6).equals(XZ_MAGIC)) return 'xz';
  if (data.length >= 4 && data.readUInt32LE(0) === ZSTD_MAGIC) return 'zst';
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) return 'gz';
  return 'none';
}
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ZSTD_MAGIC = 0xfd2fb528;

export function xzDecompress(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // lzma-native calls back with (result, error).
    const done = (result: Buffer, error?: Error) => (error ? reject(error) : resolve(result));
    (lzma.decompress as (buf: Buffer, opts: object, cb: typeof done) => void)(data, {}, done);
  });
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
