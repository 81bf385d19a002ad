// ICU's data library (libicudata.so.NN) as the guest needs it: loadable, and empty. Nix needs
// libicuuc only through libarchive → libxml2, which asks ICU for a converter only for an encoding
// it lacks itself, and the guest never does; yet the library is 30 MiB, ~40 % of the initrd,
// and every boot pays for unpacking it. ICU supports a data library whose table of contents is
// empty ("stubdata"): then every lookup fails cleanly (U_FILE_ACCESS_ERROR) and the algorithmic
// converters (UTF-8, UTF-16, Latin-1, ASCII) still work.
//
// The stub is the real file with its data cut: the symbol icudt<NN>_dat keeps its header with the
// entry count set to 0, and the rest of it becomes zero fill (the segment's memory size stays, its
// file size shrinks). Every address stays as it was, so no relocation changes:
// - what follows the data in its segment (arm64's .eh_frame) gets a segment of its own, at a file
//   offset congruent to its address (x86_64's is 4 zero bytes and joins the zero fill);
// - later segments move down by whole pages.
// The section headers would be stale and go (the loader does not read them); with a segment added,
// the program headers move to the end of the file.
import {
  elfDynamicSymbols,
  elfProgramHeaders,
  parseElf,
  PT_LOAD,
  PT_PHDR,
  type ProgramHeader,
} from './elf.js';

/** Library file names that are ICU's data: the guest gets the stub in their place. */
export function isIcuDataLibrary(path: string): boolean {
  return /(^|\/)libicudata\.so\.\d+$/.test(path);
}

/** ICU's common-data header magic (udata.h: MappedData). */
const MAGIC = [0xda, 0x27];
const PHDR_SIZE = 56;

/** The smallest offset ≥ `from` that is congruent to `like` modulo `page`. */
function congruent(from: number, like: number, page: number): number {
  return from + ((((like - from) % page) + page) % page);
}

function writeProgramHeader(out: Buffer, at: number, h: Omit<ProgramHeader, 'at'>): void {
  out.writeUInt32LE(h.type, at);
  out.writeUInt32LE(h.flags, at + 4);
  out.writeBigUInt64LE(BigInt(h.offset), at + 8);
  out.writeBigUInt64LE(BigInt(h.vaddr), at + 16);
  out.writeBigUInt64LE(BigInt(h.paddr), at + 24);
  out.writeBigUInt64LE(BigInt(h.filesz), at + 32);
  out.writeBigUInt64LE(BigInt(h.memsz), at + 40);
  out.writeBigUInt64LE(BigInt(h.align), at + 48);
}

/**
 * The stub, or the library as it is when it cannot be stubbed (a layout this code does not know):
 * the stub only makes the boot faster, so a library it cannot cut still makes a working image.
 */
export function icuDataForGuest(data: Buffer, label: string): { data: Buffer; kept: string | null } {
  try {
    return { data: stubIcuData(data, label), kept: null };
  } catch (err) {
    return { data, kept: `${(err as Error).message}; the library is kept whole` };
  }
}

export function stubIcuData(data: Buffer, label: string): Buffer {
  const info = parseElf(data, label);
  const symbol = elfDynamicSymbols(data, info).find((s) => /^icudt\d+[lbe]?_dat$/.test(s.name));
  if (!symbol) throw new Error(`${label} exports no icudt<NN>_dat symbol: not ICU's data library`);
  const headers = elfProgramHeaders(data, label);
  if (headers.some((h) => h.type === PT_PHDR))
    throw new Error(`${label} has a PT_PHDR segment; ICU's data library has none`);
  const loads = headers.filter((h) => h.type === PT_LOAD);
  const segment = loads.find((h) => symbol.value >= h.vaddr && symbol.value < h.vaddr + h.filesz);
  if (!segment) throw new Error(`${label}: ${symbol.name} lies in no loaded segment`);

  const start = segment.offset + (symbol.value - segment.vaddr);
  if (data[start + 2] !== MAGIC[0] || data[start + 3] !== MAGIC[1])
    throw new Error(`${label}: ${symbol.name} does not start with ICU's data header (magic 0xda27)`);
  const headerSize = data.readUInt16LE(start);
  const keptEnd = start + headerSize + 4; // the header, then the entry count
  const end = start + symbol.size;
  const segmentEnd = segment.offset + segment.filesz;
  if (end > segmentEnd || keptEnd > end)
    throw new Error(`${label}: ${symbol.name} (${symbol.size} bytes) does not fit its segment`);

  const page = Math.max(...loads.map((h) => h.align));
  const tail = data.subarray(end, segmentEnd);
  const tailKept = tail.some((b) => b !== 0);
  // On a page of its own: sharing one with the kept bytes would map them into the data's range.
  const tailAt = tailKept ? congruent(Math.ceil(keptEnd / page) * page, end, page) : keptEnd;
  const laterAt = congruent(tailKept ? tailAt + tail.length : keptEnd, segmentEnd, page);
  const later = data.subarray(segmentEnd);
  const inZeroTail = headers.find(
    (h) => !tailKept && h.filesz > 0 && h.offset >= end && h.offset < segmentEnd,
  );
  if (inZeroTail)
    throw new Error(`${label}: a segment (type ${inZeroTail.type}) lies in the zeros after ${symbol.name}`);

  const moved = (h: ProgramHeader): ProgramHeader => {
    if (h === segment)
      return { ...h, filesz: keptEnd - h.offset, memsz: tailKept ? end - h.offset : h.memsz };
    if (tailKept && h.offset >= end && h.offset < segmentEnd)
      return { ...h, offset: h.offset - end + tailAt };
    if (h.offset >= segmentEnd && (h.filesz > 0 || h.type === PT_LOAD))
      return { ...h, offset: h.offset - segmentEnd + laterAt };
    return h;
  };
  const rewritten = headers.flatMap((h) => {
    if (h !== segment || !tailKept) return [moved(h)];
    const tailSegment: ProgramHeader = {
      ...h,
      offset: tailAt,
      vaddr: h.vaddr + (end - h.offset),
      paddr: h.paddr + (end - h.offset),
      filesz: tail.length,
      memsz: h.memsz - (end - h.offset),
    };
    return [moved(h), tailSegment];
  });

  const laterEnd = laterAt + later.length;
  // With a segment added the table grows, so it goes to the end; else it stays where it was (or
  // moves with what follows the data).
  const oldPhoff = Number(data.readBigUInt64LE(32));
  if (oldPhoff >= keptEnd && oldPhoff < segmentEnd)
    throw new Error(`${label}: the program headers lie inside ${symbol.name}`);
  const phoff = tailKept
    ? Math.ceil(laterEnd / 8) * 8
    : oldPhoff < keptEnd
      ? oldPhoff
      : oldPhoff - segmentEnd + laterAt;
  const out = Buffer.alloc(tailKept ? phoff + rewritten.length * PHDR_SIZE : laterEnd);
  data.copy(out, 0, 0, keptEnd);
  if (tailKept) tail.copy(out, tailAt);
  later.copy(out, laterAt);
  out.writeUInt32LE(0, start + headerSize);

  for (const [i, h] of rewritten.entries()) writeProgramHeader(out, phoff + i * PHDR_SIZE, h);
  out.writeBigUInt64LE(BigInt(phoff), 32);
  out.writeUInt16LE(PHDR_SIZE, 54);
  out.writeUInt16LE(rewritten.length, 56);
  // No section headers (e_shoff, e_shnum, e_shstrndx): their offsets would point at moved bytes.
  out.writeBigUInt64LE(0n, 40);
  out.writeUInt16LE(0, 60);
  out.writeUInt16LE(0, 62);
  return out;
}
