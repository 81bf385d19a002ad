// The kernel file QEMU is given. arm64: Debian's vmlinuz is a gzipped Image; QEMU loads the Image
// itself (magic "ARM\x64" at byte 56), so it is unpacked once here rather than at every boot.
// x86_64: a bzImage, which QEMU boots directly.
import { gunzipSync } from 'node:zlib';

export interface KernelForm {
  data: Buffer;
  format: 'Image' | 'bzImage' | 'vmlinux-pvh';
}

export function arm64Image(vmlinuz: Buffer, label: string): KernelForm {
  const data = vmlinuz[0] === 0x1f && vmlinuz[1] === 0x8b ? gunzipSync(vmlinuz) : vmlinuz;
  if (data.length < 60 || data.readUInt32LE(56) !== 0x644d5241)
    throw new Error(`${label} is not an arm64 Image (no ARM\\x64 magic at byte 56)`);
  return { data, format: 'Image' };
}

/**
 * x86_64 boots the bzImage as Debian ships it. Its payload is xz with the x86 BCJ filter, which
 * the WebAssembly xz decoder does not implement, so the ELF vmlinux (PVH entry) that the shell
 * builder extracted is not available here.
 */
export function x86Kernel(vmlinuz: Buffer, label: string): KernelForm {
  if (vmlinuz.length < 0x206 || vmlinuz.toString('latin1', 0x202, 0x206) !== 'HdrS')
    throw new Error(`${label} is not a bzImage (no HdrS setup header)`);
  return { data: vmlinuz, format: 'bzImage' };
}
