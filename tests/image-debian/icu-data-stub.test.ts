// ICU's data library cut to its header: the process image the loader builds from the stub is the
// one it built from the original, but for the data past the header (now zeros) and the entry count
// (now 0). Two layouts, as Debian ships them: x86_64's (4 KiB pages, the data last in its
// segment) and arm64's (64 KiB pages, the unwind tables after the data). The real libraries are
// stubbed by every image build and loaded by Nix in the booted guests.
import t from 'tap';
import { elfProgramHeaders, PT_LOAD } from '../../daemon/image/debian/elf.js';
import { icuDataForGuest, isIcuDataLibrary, stubIcuData } from '../../daemon/image/debian/icu-data-stub.js';

const HEADER_SIZE = 32;
const PT_GNU_EH_FRAME = 0x6474e550;

interface FakeLibrary {
  file: Buffer;
  page: number;
  /** The data symbol's address (= its file offset). */
  dataAt: number;
  dataSize: number;
  /** Where the unwind tables after the data lie, when there are some. */
  tailAt: number;
  /** The end of the original program header table. */
  phdrEnd: number;
}

interface FakeOptions {
  page?: number;
  /** Non-zero bytes after the data in its segment (arm64's .eh_frame_hdr), with a header naming them. */
  unwindTables?: boolean;
  symbol?: string;
  magic?: number[];
}

/**
 * An ELF64 shared library: one read-only segment with the dynamic symbol table, the data symbol in
 * a segment of its own followed by 4 zero bytes (x86_64's empty .eh_frame) or by unwind tables,
 * then a writable segment, then the section headers.
 */
function fakeIcuData(opts: FakeOptions = {}): FakeLibrary {
  const page = opts.page ?? 0x1000;
  const dataAt = page;
  const dataSize = HEADER_SIZE + 4 + 8 * page + 0x123;
  const tailAt = dataAt + dataSize;
  const tailSize = opts.unwindTables ? 0x2c : 4;
  const dataEnd = tailAt + tailSize;
  const rwOffset = Math.ceil(dataEnd / page) * page + 0xe28;
  const rwVaddr = rwOffset + 0x10 * page;
  const shoff = rwOffset + 0x40;
  const phnum = opts.unwindTables ? 4 : 3;
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
  file.writeUInt16LE(phnum, 56);
  file.writeUInt16LE(64, 58);
  file.writeUInt16LE(5, 60);
  file.writeUInt16LE(3, 62); // .shstrtab

  const segment = (
    i: number,
    type: number,
    flags: number,
    offset: number,
    vaddr: number,
    size: number,
    memsz = size,
  ) => {
    const at = 64 + i * 56;
    file.writeUInt32LE(type, at);
    file.writeUInt32LE(flags, at + 4);
    file.writeBigUInt64LE(BigInt(offset), at + 8);
    file.writeBigUInt64LE(BigInt(vaddr), at + 16);
    file.writeBigUInt64LE(BigInt(vaddr), at + 24);
    file.writeBigUInt64LE(BigInt(size), at + 32);
    file.writeBigUInt64LE(BigInt(memsz), at + 40);
    file.writeBigUInt64LE(BigInt(type === PT_LOAD ? page : 4), at + 48);
  };
  segment(0, PT_LOAD, 4, 0, 0, 0x200);
  segment(1, PT_LOAD, 5, dataAt, dataAt, dataEnd - dataAt);
  segment(2, PT_LOAD, 6, rwOffset, rwVaddr, 0x40, 0x48);
  if (opts.unwindTables) segment(3, PT_GNU_EH_FRAME, 4, tailAt, tailAt, tailSize);

  const dynstr = Buffer.from(`\0${opts.symbol ?? 'icudt72_dat'}\0`);
  dynstr.copy(file, 0x120);
  const dynsymAt = 0x140;
  file.writeUInt32LE(1, dynsymAt + 24); // st_name
  file[dynsymAt + 24 + 4] = 0x11; // GLOBAL OBJECT
  file.writeUInt16LE(2, dynsymAt + 24 + 6);
  file.writeBigUInt64LE(BigInt(dataAt), dynsymAt + 24 + 8);
  file.writeBigUInt64LE(BigInt(dataSize), dynsymAt + 24 + 16);
  const shstrtab = Buffer.from('\0.dynsym\0.dynstr\0.shstrtab\0.rodata\0');
  shstrtab.copy(file, 0x1a0);

  // The data: ICU's header, an entry count of 3, then payload.
  file.writeUInt16LE(HEADER_SIZE, dataAt);
  Buffer.from(opts.magic ?? [0xda, 0x27]).copy(file, dataAt + 2);
  file.write('CmnD', dataAt + 12, 'latin1');
  file.writeUInt32LE(3, dataAt + HEADER_SIZE);
  file.fill(0xab, dataAt + HEADER_SIZE + 4, dataAt + dataSize);
  if (opts.unwindTables) file.fill(0xee, tailAt, dataEnd);
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
  section(2, 9, 3, 0x120, dynstr.length, 0);
  section(3, 17, 3, 0x1a0, shstrtab.length, 0);
  section(4, 27, 1, dataAt, dataSize, 0);
  return { file, page, dataAt, dataSize, tailAt, phdrEnd: 64 + phnum * 56 };
}

/**
 * The process image as glibc's loader builds it: each PT_LOAD maps whole pages of the file
 * (its offset and address rounded down to the page), then the rest of its memory size is zeros;
 * later segments map over earlier ones.
 */
function processImage(file: Buffer, page: number): Buffer {
  const loads = elfProgramHeaders(file, 'image').filter((h) => h.type === PT_LOAD);
  const top = Math.max(...loads.map((h) => h.vaddr + h.memsz));
  const memory = Buffer.alloc(Math.ceil(top / page) * page);
  for (const h of loads) {
    const mapAt = Math.floor(h.vaddr / page) * page;
    const fileAt = Math.floor(h.offset / page) * page;
    const mappedEnd = Math.ceil((h.vaddr + h.filesz) / page) * page;
    memory.fill(0, mapAt, mappedEnd);
    file.copy(memory, mapAt, fileAt, Math.min(file.length, fileAt + (mappedEnd - mapAt)));
    memory.fill(0, h.vaddr + h.filesz, Math.ceil((h.vaddr + h.memsz) / page) * page);
  }
  return memory;
}

for (const layout of [
  { name: 'x86_64: the data last in its segment, 4 KiB pages', opts: {} },
  { name: 'arm64: unwind tables after the data, 64 KiB pages', opts: { page: 0x10000, unwindTables: true } },
]) {
  t.test(`${layout.name}: the stub loads as the library did, less the data`, async (t) => {
    const fake = fakeIcuData(layout.opts);
    const stub = stubIcuData(fake.file, 'libicudata.so.72');
    t.ok(stub.length < fake.file.length - 2 * fake.page, `${fake.file.length} → ${stub.length} bytes`);

    const want = processImage(fake.file, fake.page);
    want.fill(0, 0, fake.phdrEnd); // the ELF and program headers are rewritten
    want.writeUInt32LE(0, fake.dataAt + HEADER_SIZE);
    want.fill(0, fake.dataAt + HEADER_SIZE + 4, fake.dataAt + fake.dataSize);
    const got = processImage(stub, fake.page);
    got.fill(0, 0, fake.phdrEnd);
    t.equal(got.length, want.length, 'the same extent');
    const differs = want.findIndex((b, i) => got[i] !== b);
    t.equal(differs, -1, 'the same bytes at every address but the data past its header');
    t.equal(got.toString('latin1', fake.dataAt + 12, fake.dataAt + 16), 'CmnD', "ICU's header is kept");
    t.equal(got.readUInt32LE(fake.dataAt + HEADER_SIZE), 0, 'an empty table of contents');

    const headers = elfProgramHeaders(stub, 'stub');
    for (const h of headers.filter((x) => x.type === PT_LOAD))
      t.equal(
        h.offset % fake.page,
        h.vaddr % fake.page,
        `segment at 0x${h.vaddr.toString(16)}: offset ≡ address`,
      );
    const eh = headers.find((h) => h.type === PT_GNU_EH_FRAME);
    if (eh)
      t.ok(
        stub.subarray(eh.offset, eh.offset + eh.filesz).every((b) => b === 0xee),
        'the unwind tables, where their header says',
      );
    t.equal(stub.readUInt16LE(60), 0, 'no section headers');
  });
}

t.test('a file that is not ICU data is refused, naming it', async (t) => {
  t.throws(
    () => stubIcuData(fakeIcuData({ symbol: 'something_else' }).file, 'libx.so.1'),
    /libx\.so\.1 exports no icudt<NN>_dat symbol/,
  );
  t.throws(
    () => stubIcuData(fakeIcuData({ magic: [0, 0] }).file, 'libicudata.so.72'),
    /libicudata\.so\.72: icudt72_dat does not start with ICU's data header/,
  );
  t.throws(() => stubIcuData(Buffer.from('#!/bin/sh\n'), 'libicudata.so.72'), /not an ELF file/);
});

t.test('a library it cannot cut goes into the image whole, with the reason for the log', async (t) => {
  const odd = fakeIcuData({ magic: [0, 0] }).file;
  const kept = icuDataForGuest(odd, 'libicu72 usr/lib/x86_64-linux-gnu/libicudata.so.72');
  t.equal(kept.data, odd, 'the bytes as they were');
  t.match(kept.kept, /libicudata\.so\.72: icudt72_dat does not start with ICU's data header.*kept whole/);
  const cut = icuDataForGuest(fakeIcuData().file, 'libicudata.so.72');
  t.equal(cut.kept, null);
  t.ok(cut.data.length < odd.length, 'a library it knows is cut');
});

t.test('which files are ICU data', async (t) => {
  t.ok(isIcuDataLibrary('usr/lib/x86_64-linux-gnu/libicudata.so.72'));
  t.ok(isIcuDataLibrary('usr/lib/aarch64-linux-gnu/libicudata.so.76'));
  t.notOk(isIcuDataLibrary('usr/lib/x86_64-linux-gnu/libicuuc.so.72'));
  t.notOk(isIcuDataLibrary('usr/lib/x86_64-linux-gnu/libicudata.so'));
});
