// What a hypervisor said last before it died: the line an exit reason quotes.

/** The last non-blank line of `text` (a stderr tail), trimmed; '' when there is none. */
export function lastLine(text: string | undefined): string {
  if (!text) return '';
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}
