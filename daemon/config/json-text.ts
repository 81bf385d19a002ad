// JSON.parse in Node 20 reports some syntax errors without a position and silently keeps the
// last of two duplicate keys. A config file is edited by hand, so this scanner checks the
// syntax first and names the line and column of the first problem, and every duplicate key.

export interface JsonProblem {
  /** Dotted path of the key concerned, '' for a syntax error. */
  key: string;
  message: string;
  line: number;
  column: number;
}

class SyntaxProblem extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** 1-based line and column of a UTF-16 offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function describeChar(ch: string | undefined): string {
  if (ch === undefined) return 'the end of the file';
  if (ch === '\n' || ch === '\r') return 'a line break';
  if (ch.charCodeAt(0) < 0x20) return `control character U+${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  return `'${ch}'`;
}

const joinKey = (parent: string, key: string) => (parent === '' ? key : `${parent}.${key}`);

class Scanner {
  pos = 0;
  readonly duplicates: Array<{ key: string; offset: number }> = [];

  constructor(readonly text: string) {}

  fail(message: string, at = this.pos): never {
    throw new SyntaxProblem(message, at);
  }

  skipWhitespace(): void {
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') return;
      this.pos++;
    }
  }

  document(): void {
    this.skipWhitespace();
    if (this.pos >= this.text.length) this.fail('the file is empty; expected a JSON object such as {}');
    this.value('');
    this.skipWhitespace();
    if (this.pos < this.text.length) {
      this.fail(`unexpected ${describeChar(this.text[this.pos])} after the end of the JSON value`);
    }
  }

  value(keyPath: string): void {
    const c = this.text[this.pos];
    if (c === '{') return this.object(keyPath);
    if (c === '[') return this.array(keyPath);
    if (c === '"') return void this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const word of ['true', 'false', 'null']) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return;
      }
    }
    if (c === "'") this.fail('strings need double quotes, not single quotes');
    if (c === '/') this.fail('comments are not allowed in JSON');
    this.fail(`expected a value but found ${describeChar(c)}`);
  }

  object(keyPath: string): void {
    this.pos++; // '{'
    const seen = new Set<string>();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c !== '"') {
        if (c === '}') this.fail('a trailing comma before } is not allowed in JSON');
        if (c === '/') this.fail('comments are not allowed in JSON');
        if (c === "'") this.fail('property names need double quotes, not single quotes');
        this.fail(`expected a property name in double quotes but found ${describeChar(c)}`);
      }
      const keyStart = this.pos;
      const key = this.string();
      const fullKey = joinKey(keyPath, key);
      if (seen.has(key)) this.duplicates.push({ key: fullKey, offset: keyStart });
      seen.add(key);
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') {
        this.fail(`expected ':' after the property name "${key}" but found ${describeChar(this.text[this.pos])}`);
      }
      this.pos++;
      this.skipWhitespace();
      this.value(fullKey);
      this.skipWhitespace();
      const next = this.text[this.pos];
      if (next === ',') {
        this.pos++;
        continue;
      }
      if (next === '}') {
        this.pos++;
        return;
      }
      this.fail(`expected ',' or '}' after the value of "${key}" but found ${describeChar(next)}`);
    }
  }

  array(keyPath: string): void {
    this.pos++; // '['
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (let index = 0; ; index++) {
      this.skipWhitespace();
      if (this.text[this.pos] === ']') this.fail('a trailing comma before ] is not allowed in JSON');
      this.value(`${keyPath}[${index}]`);
      this.skipWhitespace();
      const next = this.text[this.pos];
      if (next === ',') {
        this.pos++;
        continue;
      }
      if (next === ']') {
        this.pos++;
        return;
      }
      this.fail(`expected ',' or ']' in the list but found ${describeChar(next)}`);
    }
  }

  /** Scans a string literal and returns its decoded value. */
  string(): string {
    const start = this.pos;
    this.pos++; // opening quote
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string', start);
      if (c === '"') break;
      if (c.charCodeAt(0) < 0x20) this.fail(`${describeChar(c)} inside a string; write it as an escape such as \\n`);
      if (c === '\\') {
        const e = this.text[this.pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) {
            this.fail('\\u must be followed by four hex digits');
          }
          this.pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail(`invalid escape \\${e ?? ''} in a string`);
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
    this.pos++; // closing quote
    return JSON.parse(this.text.slice(start, this.pos)) as string;
  }

  number(): void {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (!m) this.fail('invalid number');
    this.pos += m[0].length;
    const after = this.text[this.pos];
    if (m[1] === '0' && after !== undefined && after >= '0' && after <= '9') this.fail('numbers cannot start with 0');
  }
}

/**
 * Checks `text` as JSON. Returns the first syntax error (and nothing else), or every duplicate
 * key; an empty list means JSON.parse will accept the text and lose nothing.
 */
export function checkJsonText(text: string): JsonProblem[] {
  const scanner = new Scanner(text);
  try {
    scanner.document();
  } catch (err) {
    if (err instanceof SyntaxProblem) {
      return [{ key: '', message: err.message, ...lineColumn(text, err.offset) }];
    }
    if (err instanceof RangeError) {
      return [{ key: '', message: 'the JSON is nested too deeply', line: 1, column: 1 }];
    }
    throw err;
  }
  return scanner.duplicates.map((d) => ({
    key: d.key,
    message: `duplicate key '${d.key}': JSON would silently keep only the last one`,
    ...lineColumn(text, d.offset),
  }));
}
