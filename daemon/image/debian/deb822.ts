// Debian's control-file format (deb822): paragraphs of "Field: value" lines separated by blank
// lines, a value continued on lines that start with a space. Used by Packages and InRelease.

export type Deb822Paragraph = Record<string, string>;

/** Every paragraph of `text`; continuation lines are joined to their field with "\n". */
export function parseDeb822(text: string): Deb822Paragraph[] {
  const paragraphs: Deb822Paragraph[] = [];
  let current: Deb822Paragraph | null = null;
  let field: string | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current) paragraphs.push(current);
      current = null;
      field = null;
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!current || field === null)
        throw new Error(`deb822: continuation line ${JSON.stringify(line)} follows no field`);
      current[field] += `\n${line.slice(1)}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new Error(`deb822: line ${JSON.stringify(line)} is neither "Field: value" nor a continuation`);
    current ??= {};
    field = line.slice(0, colon);
    current[field] = line.slice(colon + 1).trim();
  }
  if (current) paragraphs.push(current);
  return paragraphs;
}
