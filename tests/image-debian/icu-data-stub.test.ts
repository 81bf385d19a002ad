// ICU's data library cut to its header: what the loader maps from the stub is what it mapped from
// the original, but for the data past the header (now zero fill) and the entry count (now 0).
// The real library is stubbed by every image build and booted by the guest tests.
import t from 'tap';
import { elfProgramHeaders, PT_LOAD } from '../../daemon/image/debian/elf.js';
import { isIcuDataLibrary, stubIcuData } from '../../daemon/image/debian/icu-data-stub.js';

const PAGE = 0x1000;
const HEADER_SIZE = 32;

interface FakeLibrary {
  file: Buffer;
  /** The data symbol's address. */
  dataAt: number;
  dataSize: number;
}

/**
 * An ELF64 shared library laid out like Debian's libicudata: one read-only segment with the
 * dynamic symbol table, the data symbol in a segment of its own followed by 4 zero bytes (an empty
 * .eh_frame), then a writable segment, then the section headers.
 */
function fakeIcuData(opts: { symbol?: string; magic?: number[]; tail?: number } = {}): FakeLibrary {
  const dataAt = 0x1000;
  const dataSize = HEADER_SIZE + 4 + 3 * PAGE;
  const dataEnd = dataAt + dataSize + 4;
  const rwOffset = Math.ceil(dataEnd / PAGE) * PAGE + 0xe28;
  const rwVaddr = rwOffset + 0x10 * PAGE;
  const shoff = rwOffset + 0x40;
  const file = Buffer.alloc(shoff + 5 * 64);

  file.writeUInt32BE(0x7f454c46, 0);
  file[4] = 2; // ELF64
  file[5] = 1; // little-endian
  file[6] = 1;
  file.writeUInt16LE(3, 16); // ET_DYN
  file.writeUInt16LE(62, 18); // x86_64
  file.writeBigUInt64LE(64n, 32); // e_phoff
  file.writeBigUInt64LE(BigInt(shoff), 40);
  file.writeUInt16LE(56, 54);
  file.writeUInt16LE(3, 56);
  file.writeUInt16LE(64, 58);
  file.writeUInt16LE(5, 60);
  file.writeUInt16LE(3, 62); // .shstrtab

  const segment = (
    i: number,
    flags: number,
    offset: number,
    vaddr: number,
    filesz: number,
    memsz: number,
  ) => {
    const at = 64 + i * 56;
    file.writeUInt32LE(PT_LOAD, at);
    file.writeUInt32LE(flags, at + 4);
    file.writeBigUInt64LE(BigInt(offset), at + 8);
    file.writeBigUInt64LE(BigInt(vaddr), at + 16);
    file.writeBigUInt64LE(BigInt(vaddr), at + 24);
    file.writeBigUInt64LE(BigInt(filesz), at + 32);
    file.writeBigUInt64LE(BigInt(memsz), at + 40);
    file.writeBigUInt64LE(BigInt(PAGE), at + 48);
  };
  segment(0, 4, 0, 0, 0x200, 0x200);
  segment(1, 4, dataAt, dataAt, dataEnd - dataAt, dataEnd - dataAt);
  segment(2, 6, rwOffset, rwVaddr, 0x40, 0x48);

  const dynstr = Buffer.from(`\0${opts.symbol ?? 'icudt72_dat'}\0`);
  dynstr.copy(file, 0x100);
  const dynsymAt = 0x120;
  file.writeUInt32LE(1, dynsymAt + 24); // st_name
  file[dynsymAt + 24 + 4] = 0x11; // GLOBAL OBJECT
  file.writeUInt16LE(2, dynsymAt + 24 + 6);
  file.writeBigUInt64LE(BigInt(dataAt), dynsymAt + 24 + 8);
  file.writeBigUInt64LE(BigInt(dataSize), dynsymAt + 24 + 16);
  const shstrtab = Buffer.from('\0.dynsym\0.dynstr\0.shstrtab\0.rodata\0');
  shstrtab.copy(file, 0x180);

  // The data: ICU's header, an entry count of 3, then payload.
  file.writeUInt16LE(HEADER_SIZE, dataAt);
  Buffer.from(opts.magic ?? [0xda, 0x27]).copy(file, dataAt + 2);
  file.write('CmnD', dataAt + 12, 'latin1');
  file.writeUInt32LE(3, dataAt + HEADER_SIZE);
  file.fill(0xab, dataAt + HEADER_SIZE + 4, dataAt + dataSize);
  if (opts.tail !== undefined) file[dataAt + dataSize + 1] = opts.tail;
  file.fill(0x5a, rwOffset, rwOffset + 0x40);

  const section = (i: number, name: number, type: number, offset: number, size: number, link: number) => {
    const at = shoff + i * 64;
    file.writeUInt32LE(name, at);
    file.writeUInt32LE(type, at + 4);
    file.writeBigUInt64LE(BigInt(offset), at + 24);
    file.writeBigUInt64LE(BigInt(size), at + 32);
    file.writeUInt32LE(link, at + 40);
  };
  section(1, 1, 11, dynsymAt, 48, 2); // .dynsym → .dynstr
  section(2, 9, 3, 0x100, dynstr.length, 0);
  section(3, 17, 3, 0x180, shstrtab.length, 0);
  section(4, 27, 1, dataAt, dataSize, 0);
  return { file, dataAt, dataSize };
}

/** The process image the loader builds: each segment's file bytes, then zero fill to its size. */
function loaded(file: Buffer): Map<number, Buffer> {
  const memory = new Map<number, Buffer>();
  for (const h of elfProgramHeaders(file, 'loaded').filter((x) => x.type === PT_LOAD)) {
    const bytes = Buffer.alloc(h.memsz);
    file.copy(bytes, 0, h.offset, h.offset + h.filesz);
    memory.set(h.vaddr, bytes);
  }
  return memory;
}

t.test('the stub maps as the library did, less the data past its header', async (t) => {
  const { file, dataAt, dataSize } = fakeIcuData();
  const stub = stubIcuData(file, 'libicudata.so.72');
  t.ok(stub.length < file.length - 2 * PAGE, `${file.length} → ${stub.length} bytes`);

  const before = loaded(file);
  const after = loaded(stub);
  t.same([...after.keys()], [...before.keys()], 'the same segments at the same addresses');
  for (const [vaddr, bytes] of before) {
    // The ELF and program headers (the first 0x100 bytes of the first segment) are rewritten.
    const from = vaddr === 0 ? 0x100 : 0;
    const want = Buffer.from(bytes.subarray(from));
    if (vaddr === dataAt) {
      want.writeUInt32LE(0, HEADER_SIZE);
      want.fill(0, HEADER_SIZE + 4, dataSize);
    }
    t.ok(after.get(vaddr)!.subarray(from).equals(want), `segment at 0x${vaddr.toString(16)}`);
  }
  const data = after.get(dataAt)!;
  t.equal(data.readUInt32LE(HEADER_SIZE), 0, 'an empty table of contents');
  t.equal(data.toString('latin1', 12, 16), 'CmnD', "ICU's header is kept");

  for (const h of elfProgramHeaders(stub, 'stub').filter((x) => x.type === PT_LOAD))
    t.equal(h.offset % PAGE, h.vaddr % PAGE, `segment at 0x${h.vaddr.toString(16)}: offset ≡ address`);
  t.equal(stub.readUInt16LE(60), 0, 'no section headers');
});

t.test('a file that is not ICU data is refused, naming it', async (t) => {
  t.throws(
    () => stubIcuData(fakeIcuData({ symbol: 'something_else' }).file, 'libx.so.1'),
    /libx\.so\.1 exports no icudt<NN>_dat symbol/,
  );
  t.throws(
    () => stubIcuData(fakeIcuData({ magic: [0, 0] }).file, 'libicudata.so.72'),
    /libicudata\.so\.72: icudt72_dat does not start with ICU's data header/,
  );
  t.throws(
    () => stubIcuData(fakeIcuData({ tail: 7 }).file, 'libicudata.so.72'),
    /icudt72_dat is not the last non-zero content of its segment/,
  );
  t.throws(() => stubIcuData(Buffer.from('#!/bin/sh\n'), 'libicudata.so.72'), /not an ELF file/);
});

t.test('which files are ICU data', async (t) => {
  t.ok(isIcuDataLibrary('usr/lib/x86_64-linux-gnu/libicudata.so.72'));
  t.ok(isIcuDataLibrary('usr/lib/aarch64-linux-gnu/libicudata.so.76'));
  t.notOk(isIcuDataLibrary('usr/lib/x86_64-linux-gnu/libicuuc.so.72'));
  t.notOk(isIcuDataLibrary('usr/lib/x86_64-linux-gnu/libicudata.so'));
});
