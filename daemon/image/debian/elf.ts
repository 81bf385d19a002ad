// What the image needs from ELF64 little-endian files (x86_64 and aarch64): the machine, the
// program interpreter, DT_NEEDED/DT_RUNPATH of the dynamic section, a named section's bytes
// (a kernel module's .modinfo), and the notes of PT_NOTE segments (a kernel's PVH entry). Read
// through the section headers, which Debian's stripped binaries and modules keep.

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

export const PT_LOAD = 1;
const PT_INTERP = 3;
const PT_NOTE = 4;
export const PT_PHDR = 6;
const SHT_DYNAMIC = 6;
const SHT_DYNSYM = 11;
const DT_NEEDED = 1;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

export interface ProgramHeader {
  /** Where this header lies in the file (for rewriting it). */
  at: number;
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface DynamicSymbol {
  name: string;
  value: number;
  size: number;
}

export interface ElfInfo {
  machine: number;
  interpreter: string | null;
  needed: string[];
  runpath: string[];
  sections: Section[];
}

export function isElf(data: Buffer): boolean {
  return data.length >= 4 && data.readUInt32BE(0) === 0x7f454c46;
}

function cString(data: Buffer, at: number): string {
  const end = data.indexOf(0, at);
  return data.toString('utf8', at, end < 0 ? data.length : end);
}

export function parseElf(data: Buffer, label: string): ElfInfo {
  if (!isElf(data)) throw new Error(`${label} is not an ELF file`);
  if (data[4] !== 2 || data[5] !== 1)
    throw new Error(`${label} is not a little-endian ELF64 file (class ${data[4]}, data ${data[5]})`);
  const machine = data.readUInt16LE(18);
  const shoff = Number(data.readBigUInt64LE(40));
  const shentsize = data.readUInt16LE(58);
  const shnum = data.readUInt16LE(60);
  const shstrndx = data.readUInt16LE(62);

  const interp = elfProgramHeaders(data, label).find((h) => h.type === PT_INTERP);
  const interpreter = interp ? cString(data, interp.offset) : null;

  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    if (at + 64 > data.length) throw new Error(`${label}: section header ${i} lies past the end of the file`);
    raw.push({
      nameAt: data.readUInt32LE(at),
      type: data.readUInt32LE(at + 4),
      offset: Number(data.readBigUInt64LE(at + 24)),
      size: Number(data.readBigUInt64LE(at + 32)),
      link: data.readUInt32LE(at + 40),
    });
  }
  const names = raw[shstrndx];
  const sections: Section[] = raw.map((s) => ({
    ...s,
    name: names ? cString(data, names.offset + s.nameAt) : '',
  }));

  const needed: string[] = [];
  const runpath: string[] = [];
  for (const s of sections.filter((x) => x.type === SHT_DYNAMIC)) {
    const strtab = sections[s.link];
    for (let at = s.offset; at + 16 <= s.offset + s.size; at += 16) {
      const tag = Number(data.readBigInt64LE(at));
      if (tag === 0) break;
      const value = Number(data.readBigUInt64LE(at + 8));
      if (tag === DT_NEEDED) needed.push(cString(data, strtab.offset + value));
      if (tag === DT_RUNPATH || tag === DT_RPATH)
        runpath.push(
          ...cString(data, strtab.offset + value)
            .split(':')
            .filter(Boolean),
        );
    }
  }
  return { machine, interpreter, needed, runpath, sections };
}

/** The program headers (segments), as the dynamic loader reads them. */
export function elfProgramHeaders(data: Buffer, label: string): ProgramHeader[] {
  if (!isElf(data) || data[4] !== 2 || data[5] !== 1)
    throw new Error(`${label} is not a little-endian ELF64 file`);
  const phoff = Number(data.readBigUInt64LE(32));
  const phentsize = data.readUInt16LE(54);
  const phnum = data.readUInt16LE(56);
  const headers: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 56 > data.length) throw new Error(`${label}: program header ${i} lies past the end of the file`);
    headers.push({
      at,
      type: data.readUInt32LE(at),
      flags: data.readUInt32LE(at + 4),
      offset: Number(data.readBigUInt64LE(at + 8)),
      vaddr: Number(data.readBigUInt64LE(at + 16)),
      paddr: Number(data.readBigUInt64LE(at + 24)),
      filesz: Number(data.readBigUInt64LE(at + 32)),
      memsz: Number(data.readBigUInt64LE(at + 40)),
      align: Number(data.readBigUInt64LE(at + 48)),
    });
  }
  return headers;
}

/** The symbols of the .dynsym section (ELF64 entries of 24 bytes), named through its string table. */
export function elfDynamicSymbols(data: Buffer, info: ElfInfo): DynamicSymbol[] {
  const symbols: DynamicSymbol[] = [];
  for (const s of info.sections.filter((x) => x.type === SHT_DYNSYM)) {
    const strtab = info.sections[s.link];
    for (let at = s.offset; at + 24 <= s.offset + s.size; at += 24) {
      symbols.push({
        name: strtab ? cString(data, strtab.offset + data.readUInt32LE(at)) : '',
        value: Number(data.readBigUInt64LE(at + 8)),
        size: Number(data.readBigUInt64LE(at + 16)),
      });
    }
  }
  return symbols;
}

/** The bytes of the named section, or null. */
export function elfSection(data: Buffer, info: ElfInfo, name: string): Buffer | null {
  const s = info.sections.find((x) => x.name === name);
  return s ? data.subarray(s.offset, s.offset + s.size) : null;
}

/** A kernel module's dependencies by module name, from the "depends=" entry of its .modinfo. */
export function moduleDepends(ko: Buffer, label: string): string[] {
  const modinfo = elfSection(ko, parseElf(ko, label), '.modinfo');
  if (!modinfo) throw new Error(`${label} has no .modinfo section: not a kernel module`);
  for (const entry of modinfo.toString('latin1').split('\0')) {
    if (entry.startsWith('depends=')) return entry.slice('depends='.length).split(',').filter(Boolean);
  }
  return [];
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Buffer;
}

/** The notes in the file's PT_NOTE segments (ELF64: 4-byte aligned name and descriptor). */
export function elfNotes(data: Buffer, label: string): ElfNote[] {
  const notes: ElfNote[] = [];
  const align4 = (n: number) => (n + 3) & ~3;
  for (const [i, ph] of elfProgramHeaders(data, label).entries()) {
    if (ph.type !== PT_NOTE) continue;
    const start = ph.offset;
    const end = start + ph.filesz;
    if (end > data.length) throw new Error(`${label}: note segment ${i} lies past the end of the file`);
    for (let at = start; at + 12 <= end; ) {
      const nameSize = data.readUInt32LE(at);
      const descSize = data.readUInt32LE(at + 4);
      const type = data.readUInt32LE(at + 8);
      const nameAt = at + 12;
      const descAt = nameAt + align4(nameSize);
      if (descAt + descSize > end) throw new Error(`${label}: a note in segment ${i} runs past its end`);
      notes.push({
        name: data.toString('latin1', nameAt, nameAt + nameSize).replace(/\0+$/, ''),
        type,
        desc: data.subarray(descAt, descAt + descSize),
      });
      at = descAt + align4(descSize);
    }
  }
  return notes;
}
