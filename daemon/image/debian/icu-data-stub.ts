// ICU's data library (libicudata.so.NN) as the guest needs it: loadable, and empty. Nix needs
// libicuuc only through libarchive → libxml2, which asks ICU for a converter only for an encoding
// it lacks itself, and the guest never does; yet the library is 30 MiB, ~40 % of the initrd,
// and every boot pays for unpacking it. ICU supports a data library whose table of contents is
// empty ("stubdata"): then every lookup fails cleanly (U_FILE_ACCESS_ERROR) and the algorithmic
// converters (UTF-8, UTF-16, Latin-1, ASCII) still work.
//
// The stub is the real file with its data cut: the symbol icudt<NN>_dat keeps its header with the
// entry count set to 0, and the rest of its segment becomes zero fill (memory size unchanged,
// file size cut). Later segments move down by whole pages, so every address stays as it was and no
// relocation changes. The section headers would be stale and go; the loader does not read them.
import { elfDynamicSymbols, elfProgramHeaders, parseElf, PT_LOAD } from './elf.js';

/** Library file names that are ICU's data: the guest gets the stub in their place. */
export function isIcuDataLibrary(path: string): boolean {
  return /(^|\/)libicudata\.so\.\d+$/.test(path);
}

/** ICU's common-data header magic (udata.h: MappedData). */
const MAGIC = [0xda, 0x27];

export function stubIcuData(data: Buffer, label: string): Buffer {
  const info = parseElf(data, label);
  const symbol = elfDynamicSymbols(data, info).find((s) => /^icudt\d+[lbe]?_dat$/.test(s.name));
  if (!symbol) throw new Error(`${label} exports no icudt<NN>_dat symbol: not ICU's data library`);
  const headers = elfProgramHeaders(data, label);
  const loads = headers.filter((h) => h.type === PT_LOAD);
  const segment = loads.find((h) => symbol.value >= h.vaddr && symbol.value < h.vaddr + h.filesz);
  if (!segment) throw new Error(`${label}: ${symbol.name} lies in no loaded segment`);

  const start = segment.offset + (symbol.value - segment.vaddr);
  if (data[start + 2] !== MAGIC[0] || data[start + 3] !== MAGIC[1])
    throw new Error(`${label}: ${symbol.name} does not start with ICU's data header (magic 0xda27)`);
  const headerSize = data.readUInt16LE(start);
  // The header, then the table of contents' entry count.
  const keptEnd = start + headerSize + 4;
  const segmentEnd = segment.offset + segment.filesz;
  if (start + symbol.size > segmentEnd || keptEnd > start + symbol.size)
    throw new Error(`${label}: ${symbol.name} (${symbol.size} bytes) does not fit its segment`);
  // Whatever follows the data in its segment must be zeros already: it becomes zero fill.
  if (data.subarray(start + symbol.size, segmentEnd).some((b) => b !== 0))
    throw new Error(`${label}: ${symbol.name} is not the last non-zero content of its segment`);

  const page = Math.max(...loads.map((h) => h.align));
  const shift = Math.floor((segmentEnd - keptEnd) / page) * page;
  const later = headers.filter((h) => h.offset >= segmentEnd && h.filesz > 0);
  const out = Buffer.concat([
    data.subarray(0, keptEnd),
    Buffer.alloc(segmentEnd - shift - keptEnd),
    data.subarray(segmentEnd),
  ]);
  out.writeUInt32LE(0, start + headerSize);
  out.writeBigUInt64LE(BigInt(keptEnd - segment.offset), segment.at + 32);
  for (const h of later) out.writeBigUInt64LE(BigInt(h.offset - shift), h.at + 8);
  // No section headers (e_shoff, e_shnum, e_shstrndx): their offsets would point at moved bytes.
  out.writeBigUInt64LE(0n, 40);
  out.writeUInt16LE(0, 60);
  out.writeUInt16LE(0, 62);
  return out;
}
