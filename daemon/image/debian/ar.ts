// The ar archive a .deb is (debian-binary, control.tar.*, data.tar.*): a global header, then for
// each member a 60-byte header (name, size in decimal at 48..58) and its bytes padded to even.

export interface ArMember {
  name: string;
  data: Buffer;
}

export function parseAr(archive: Buffer, label = 'archive'): ArMember[] {
  if (archive.subarray(0, 8).toString('latin1') !== '!<arch>\n')
    throw new Error(`${label} is not an ar archive (no "!<arch>" header)`);
  const members: ArMember[] = [];
  let at = 8;
  while (at + 60 <= archive.length) {
    const header = archive.subarray(at, at + 60).toString('latin1');
    if (header.slice(58, 60) !== '`\n') throw new Error(`${label}: bad ar member header at byte ${at}`);
    const name = header.slice(0, 16).trim().replace(/\/$/, '');
    const size = Number(header.slice(48, 58).trim());
    if (!Number.isInteger(size) || at + 60 + size > archive.length)
      throw new Error(`${label}: ar member ${name} runs past the end`);
    members.push({ name, data: archive.subarray(at + 60, at + 60 + size) });
    at += 60 + size + (size % 2);
  }
  return members;
}
