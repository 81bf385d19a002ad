// The x86_64 kernel forms: the ELF vmlinux QEMU boots through its PVH entry, unpacked from the
// bzImage's payload (xz with the x86 BCJ filter in Debian's kernels, or gzip/zstd), and the bzImage
// hyperkit boots. Synthetic bzImages hold a tiny ELF, so every way a kernel can be wrong is tried.
import { gzipSync } from 'node:zlib';
import lzma from 'lzma-native';
import t from 'tap';
import { bzImagePayload, x86Kernels } from '../../daemon/image/debian/kernel-form.js';

const PT_NOTE = 4;

/** An ELF64 x86_64 file with one PT_NOTE segment holding `notes`. */
function elfWithNotes(notes: Array<{ name: string; type: number; desc: Buffer }>, machine = 62): Buffer {
  const align4 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  const noteBytes = Buffer.concat(
    notes.map((n) => {
      const name = Buffer.from(`${n.name}\0`, 'latin1');
      const head = Buffer.alloc(12);
      head.writeUInt32LE(name.length, 0);
      head.writeUInt32LE(n.desc.length, 4);
      head.writeUInt32LE(n.type, 8);
      return Buffer.concat([head, align4(name), align4(n.desc)]);
    }),
  );
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // ELF64
  header[5] = 1; // little-endian
  header[6] = 1;
  header.writeUInt16LE(2, 16); // ET_EXEC
  header.writeUInt16LE(machine, 18);
  header.writeBigUInt64LE(64n, 32); // phoff
  header.writeUInt16LE(56, 54); // phentsize
  header.writeUInt16LE(1, 56); // phnum
  header.writeUInt16LE(64, 58); // shentsize
  const ph = Buffer.alloc(56);
  ph.writeUInt32LE(PT_NOTE, 0);
  ph.writeBigUInt64LE(BigInt(64 + 56), 8); // offset
  ph.writeBigUInt64LE(BigInt(noteBytes.length), 32); // filesz
  return Buffer.concat([header, ph, noteBytes]);
}

const pvhNote = { name: 'Xen', type: 18, desc: Buffer.from([0x00, 0x10, 0x00, 0x01]) };

/** A bzImage-shaped file: setup sectors with the header, then the payload where the header says. */
function bzImage(payload: Buffer, opts: { version?: number; magic?: string } = {}): Buffer {
  const setupSectors = 3;
  const setup = Buffer.alloc((setupSectors + 1) * 512);
  setup[0x1f1] = setupSectors;
  setup.write(opts.magic ?? 'HdrS', 0x202, 'latin1');
  setup.writeUInt16LE(opts.version ?? 0x20f, 0x206);
  const pmPrefix = Buffer.alloc(100, 0x90); // the decompressor's own code comes first
  setup.writeUInt32LE(pmPrefix.length, 0x248);
  setup.writeUInt32LE(payload.length, 0x24c);
  return Buffer.concat([setup, pmPrefix, payload, Buffer.alloc(64)]);
}

/** Compressed data followed by the uncompressed size, as the kernel build appends it. */
function withSize(compressed: Buffer, size: number): Buffer {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(size);
  return Buffer.concat([compressed, le]);
}

const filterIds = lzma as unknown as { FILTER_X86: string; FILTER_LZMA2: string };

async function xzX86(data: Buffer): Promise<Buffer> {
  // The filter chain Debian's kernel build uses: x86 BCJ, then LZMA2.
  const encoder = lzma.createStream('streamEncoder', {
    // lzma-native 8 exports the filter ids; its @types (v4) do not list them.
    filters: [{ id: filterIds.FILTER_X86 }, { id: filterIds.FILTER_LZMA2, options: { preset: 1 } }],
  } as object);
  const chunks: Buffer[] = [];
  encoder.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve, reject) => encoder.on('end', resolve).on('error', reject));
  encoder.end(data);
  await done;
  const xz = Buffer.concat(chunks);
  // Block header after the 12-byte stream header: size, flags (filters - 1), first filter's id.
  if (xz[13] !== 0x01 || xz[14] !== 0x04)
    throw new Error('the test encoder did not apply the x86 BCJ filter');
  return xz;
}

t.test('an xz (x86 BCJ) payload gives the vmlinux first, then the bzImage as given', async (t) => {
  const vmlinux = elfWithNotes([{ name: 'Linux', type: 6, desc: Buffer.from('x') }, pvhNote]);
  const image = bzImage(withSize(await xzX86(vmlinux), vmlinux.length));
  const [first, second] = await x86Kernels(image, 'linux-image.deb vmlinuz');
  t.equal(first.format, 'vmlinux');
  t.same(first.data, vmlinux, 'the ELF, byte for byte');
  t.equal(second.format, 'bzImage');
  t.equal(second.data, image, 'the bzImage itself');
});

t.test('a gzip payload is read too', async (t) => {
  const vmlinux = elfWithNotes([pvhNote]);
  const [first] = await x86Kernels(bzImage(withSize(gzipSync(vmlinux), vmlinux.length)), 'k');
  t.same(first.data, vmlinux);
});

t.test('what is wrong with a kernel is named', async (t) => {
  const vmlinux = elfWithNotes([pvhNote]);
  const xz = await xzX86(vmlinux);
  await t.rejects(x86Kernels(Buffer.from('not a kernel at all'), 'the kernel'), {
    message: 'the kernel is not a bzImage (no HdrS setup header)',
  });
  await t.rejects(x86Kernels(bzImage(withSize(xz, vmlinux.length), { version: 0x206 }), 'the kernel'), {
    message: 'the kernel: boot protocol 2.06 has no payload fields (2.08 or later needed)',
  });
  await t.rejects(x86Kernels(bzImage(withSize(xz, vmlinux.length + 1)), 'the kernel'), {
    message: `the kernel: its payload unpacked to ${vmlinux.length} bytes; the bzImage says ${vmlinux.length + 1}`,
  });
  await t.rejects(x86Kernels(bzImage(withSize(Buffer.from('LZ4!!!!!'), 8)), 'the kernel'), {
    message:
      /^the kernel: its payload is compressed in a way this builder does not read \(magic 4c5a3421; xz, zstd and gzip are read\)$/,
  });
  const cut = Buffer.concat([xz.subarray(0, 40), Buffer.alloc(4)]);
  await t.rejects(x86Kernels(bzImage(cut), 'the kernel'), {
    message: /^the kernel's payload: xz data does not decompress: /,
  });
  const noPvh = elfWithNotes([{ name: 'Linux', type: 6, desc: Buffer.from('x') }]);
  await t.rejects(x86Kernels(bzImage(withSize(gzipSync(noPvh), noPvh.length)), 'the kernel'), {
    message: /^the kernel's vmlinux has no PVH entry note \(Xen, type 18\): QEMU cannot boot it directly/,
  });
  const arm = elfWithNotes([pvhNote], 183);
  await t.rejects(x86Kernels(bzImage(withSize(gzipSync(arm), arm.length)), 'the kernel'), {
    message: "the kernel's vmlinux is not x86_64 (ELF machine 183)",
  });
  const payload = withSize(xz, vmlinux.length);
  const short = bzImage(payload).subarray(0, 4 * 512 + 100 + 10);
  t.throws(() => bzImagePayload(short, 'the kernel'), {
    message: /^the kernel: its payload \(bytes 2148 to \d+\) lies past the end of the file \(2158 bytes\)$/,
  });
});
