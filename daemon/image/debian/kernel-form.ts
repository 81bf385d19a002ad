// The kernel files the hypervisors are given, made from Debian's vmlinuz.
// - arm64: the vmlinuz is a gzipped Image; QEMU (and hvf/VZ) load the Image itself (magic
//   "ARM\x64" at byte 56), so it is unpacked once here rather than at every boot.
// - x86_64: the vmlinuz is a bzImage. hyperkit boots the bzImage. QEMU boots the ELF vmlinux
//   inside it through its PVH entry: the bzImage would first decompress itself in the guest, which
//   under tcg costs ~3 s of the boot (measured: QEMU start → first console byte 3.6 s with the
//   bzImage, 0.6 s with the vmlinux; docs/performance.md).
import { gunzipSync } from 'node:zlib';
import { compressionOfData, decompress } from './decompress.js';
import { EM_X86_64, elfNotes, isElf, parseElf } from './elf.js';

/** The kernel forms a backend can ask for (daemon/backends/descriptor.ts names them). */
export type KernelFormat = 'Image' | 'bzImage' | 'vmlinux';

export interface KernelForm {
  data: Buffer;
  format: KernelFormat;
}

export function arm64Image(vmlinuz: Buffer, label: string): KernelForm {
  const data = vmlinuz[0] === 0x1f && vmlinuz[1] === 0x8b ? gunzipSync(vmlinuz) : vmlinuz;
  if (data.length < 60 || data.readUInt32LE(56) !== 0x644d5241)
    throw new Error(`${label} is not an arm64 Image (no ARM\\x64 magic at byte 56)`);
  return { data, format: 'Image' };
}

/** x86_64: the vmlinux the bzImage's payload holds (QEMU's), then the bzImage as shipped. */
export async function x86Kernels(vmlinuz: Buffer, label: string): Promise<[KernelForm, KernelForm]> {
  const payload = bzImagePayload(vmlinuz, label);
  const vmlinux = await unpackPayload(payload, label);
  requirePvhEntry(vmlinux, label);
  return [
    { data: vmlinux, format: 'vmlinux' },
    { data: vmlinuz, format: 'bzImage' },
  ];
}

// The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst).
const SETUP_SECTS = 0x1f1;
const HEADER_MAGIC = 0x202; // "HdrS"
const PROTOCOL_VERSION = 0x206;
const PAYLOAD_OFFSET = 0x248; // from the start of the protected-mode code, protocol 2.08+
const PAYLOAD_LENGTH = 0x24c;

/** The compressed kernel inside a bzImage: where the setup header says it is. */
export function bzImagePayload(bzImage: Buffer, label: string): Buffer {
  if (bzImage.length < 0x250 || bzImage.toString('latin1', HEADER_MAGIC, HEADER_MAGIC + 4) !== 'HdrS')
    throw new Error(`${label} is not a bzImage (no HdrS setup header)`);
  const version = bzImage.readUInt16LE(PROTOCOL_VERSION);
  if (version < 0x208)
    throw new Error(
      `${label}: boot protocol ${version >> 8}.${String(version & 0xff).padStart(2, '0')} has no payload fields (2.08 or later needed)`,
    );
  const setupSectors = bzImage[SETUP_SECTS] || 4;
  const start = (setupSectors + 1) * 512 + bzImage.readUInt32LE(PAYLOAD_OFFSET);
  const end = start + bzImage.readUInt32LE(PAYLOAD_LENGTH);
  if (end > bzImage.length)
    throw new Error(
      `${label}: its payload (bytes ${start} to ${end}) lies past the end of the file (${bzImage.length} bytes)`,
    );
  return bzImage.subarray(start, end);
}

/**
 * The kernel build appends the uncompressed size (32-bit little-endian) after the compressed
 * stream; it is checked against what the stream gives.
 */
async function unpackPayload(payload: Buffer, label: string): Promise<Buffer> {
  const how = compressionOfData(payload);
  if (how === 'none')
    throw new Error(
      `${label}: its payload is compressed in a way this builder does not read (magic ${payload.subarray(0, 4).toString('hex')}; xz, zstd and gzip are read)`,
    );
  if (payload.length < 8) throw new Error(`${label}: its payload is too short (${payload.length} bytes)`);
  const size = payload.readUInt32LE(payload.length - 4);
  const vmlinux = await decompress(payload.subarray(0, -4), how, `${label}'s payload`);
  if (vmlinux.length !== size)
    throw new Error(`${label}: its payload unpacked to ${vmlinux.length} bytes; the bzImage says ${size}`);
  return vmlinux;
}

// include/xen/interface/elfnote.h: the 32-bit entry point QEMU jumps to for a PVH boot.
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

function requirePvhEntry(vmlinux: Buffer, label: string): void {
  if (!isElf(vmlinux)) throw new Error(`${label}: its payload is not an ELF vmlinux`);
  const { machine } = parseElf(vmlinux, `${label}'s vmlinux`);
  if (machine !== EM_X86_64) throw new Error(`${label}'s vmlinux is not x86_64 (ELF machine ${machine})`);
  const pvh = elfNotes(vmlinux, `${label}'s vmlinux`).some(
    (n) => n.name === 'Xen' && n.type === XEN_ELFNOTE_PHYS32_ENTRY,
  );
  if (!pvh)
    throw new Error(
      `${label}'s vmlinux has no PVH entry note (Xen, type ${XEN_ELFNOTE_PHYS32_ENTRY}): QEMU cannot boot it directly (a kernel built without CONFIG_PVH)`,
    );
}
