// JSON.parse in Node 20 reports some syntax errors without a position and silently keeps the
// last of two duplicate keys. A config file is edited by hand, so this check names the line and
// column of the first syntax problem, in words about what was expected there, and every
// duplicate key. jsonc-parser (strict: no comments, no trailing commas) does the scanning; this
// file only keeps track of what the parser expected next, to word its error codes.
import { type JSONPath, ParseErrorCode, visit } from 'jsonc-parser';

export interface JsonProblem {
  /** Dotted path of the key concerned, '' for a syntax error. */
  key: string;
  message: string;
  line: number;
  column: number;
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

/** `restart.jitter`, `list[0].a`: the path as a user would write it. */
function dottedPath(path: JSONPath): string {
  return path.reduce<string>(
    (joined, part) =>
      typeof part === 'number' ? `${joined}[${part}]` : joined === '' ? part : `${joined}.${part}`,
    '',
  );
}

/** What the parser was waiting for when it met the first problem. */
type Expecting = 'value' | 'property' | 'colon' | 'separator' | 'end';
interface Container {
  kind: 'object' | 'array';
  /** The last property name seen in this object, for messages. */
  key: string;
  keys: Set<string>;
}
interface SyntaxProblem {
  code: ParseErrorCode;
  offset: number;
  expecting: Expecting;
  container: Container | undefined;
  /** The number that ends right where the problem starts, if any (to tell `01`). */
  numberBefore: string | undefined;
}

const STRING_ERRORS = new Set([
  ParseErrorCode.InvalidCharacter,
  ParseErrorCode.UnexpectedEndOfString,
  ParseErrorCode.InvalidEscapeCharacter,
  ParseErrorCode.InvalidUnicode,
]);

/** The parser reports a bad string at its opening quote; the message names the bad character. */
function stringProblem(text: string, quote: number): { message: string; offset: number } {
  for (let i = quote + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') break;
    if (ch.charCodeAt(0) < 0x20) {
      return { message: `${describeChar(ch)} inside a string; write it as an escape such as \\n`, offset: i };
    }
    if (ch !== '\\') continue;
    const escaped = text[i + 1];
    if (escaped === 'u') {
      if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
        return { message: '\\u must be followed by four hex digits', offset: i };
      }
      i += 5;
    } else if (escaped === undefined || !'"\\/bfnrt'.includes(escaped)) {
      return { message: `invalid escape \\${escaped ?? ''} in a string`, offset: i };
    } else {
      i++;
    }
  }
  return { message: 'unterminated string', offset: quote };
}

function describeSyntaxProblem(text: string, problem: SyntaxProblem): { message: string; offset: number } {
  const { code, offset, expecting, container } = problem;
  const ch = text[offset];
  const found = describeChar(ch);
  const at = (message: string) => ({ message, offset });
  if (STRING_ERRORS.has(code)) return stringProblem(text, offset);
  if (code === ParseErrorCode.InvalidCommentToken || ch === '/')
    return at('comments are not allowed in JSON');
  if (
    problem.numberBefore !== undefined &&
    /^-?0$/.test(problem.numberBefore) &&
    ch !== undefined &&
    /[0-9]/.test(ch)
  ) {
    return at('numbers cannot start with 0');
  }
  if (
    code === ParseErrorCode.UnexpectedEndOfNumber ||
    (code === ParseErrorCode.InvalidSymbol && /[-0-9]/.test(ch))
  ) {
    return at('invalid number');
  }
  switch (expecting) {
    case 'value':
      if (ch === "'") return at('strings need double quotes, not single quotes');
      if (ch === ']' && container?.kind === 'array')
        return at('a trailing comma before ] is not allowed in JSON');
      return at(`expected a value but found ${found}`);
    case 'property':
      if (ch === '}') return at('a trailing comma before } is not allowed in JSON');
      if (ch === "'") return at('property names need double quotes, not single quotes');
      return at(`expected a property name in double quotes but found ${found}`);
    case 'colon':
      return at(`expected ':' after the property name "${container?.key}" but found ${found}`);
    case 'separator':
      if (container?.kind === 'array') return at(`expected ',' or ']' in the list but found ${found}`);
      return at(`expected ',' or '}' after the value of "${container?.key}" but found ${found}`);
    case 'end':
      return at(`unexpected ${found} after the end of the JSON value`);
  }
}

/**
 * Checks `text` as JSON. Returns the first syntax error (and nothing else), or every duplicate
 * key; an empty list means JSON.parse will accept the text and lose nothing.
 */
export function checkJsonText(text: string): JsonProblem[] {
  if (/^[ \t\n\r]*$/.test(text)) {
    return [
      {
        key: '',
        message: 'the file is empty; expected a JSON object such as {}',
        ...lineColumn(text, text.length),
      },
    ];
  }
  const containers: Container[] = [];
  const duplicates: Array<{ key: string; offset: number }> = [];
  let expecting: Expecting = 'value';
  let numberBefore: { text: string; end: number } | undefined;
  let syntax: SyntaxProblem | undefined;
  const afterValue = () => {
    expecting = containers.length === 0 ? 'end' : 'separator';
  };
  const begin = (kind: Container['kind']) => {
    containers.push({ kind, key: '', keys: new Set() });
    expecting = kind === 'object' ? 'property' : 'value';
  };
  let lastClosed: Container | undefined;
  const end = () => {
    lastClosed = containers.pop();
    afterValue();
  };
  try {
    visit(
      text,
      {
        onObjectBegin: () => begin('object'),
        onArrayBegin: () => begin('array'),
        onObjectEnd: end,
        onArrayEnd: end,
        onObjectProperty: (name, offset, _length, _line, _column, parentPath) => {
          const object = containers[containers.length - 1];
          if (object.keys.has(name)) duplicates.push({ key: dottedPath([...parentPath(), name]), offset });
          object.keys.add(name);
          object.key = name;
          expecting = 'colon';
        },
        onSeparator: (separator) => {
          const container = containers[containers.length - 1];
          expecting = separator === ':' || container?.kind === 'array' ? 'value' : 'property';
        },
        onLiteralValue: (value, offset, length) => {
          const end = offset + length;
          numberBefore = typeof value === 'number' ? { text: text.slice(offset, end), end } : undefined;
          afterValue();
        },
        onError: (code, offset) => {
          if (syntax !== undefined) return;
          const adjacentNumber = numberBefore?.end === offset ? numberBefore.text : undefined;
          // The parser closes a container before it reports the missing } or ] of it.
          const unclosed =
            code === ParseErrorCode.CloseBraceExpected || code === ParseErrorCode.CloseBracketExpected;
          const container = unclosed ? lastClosed : containers[containers.length - 1];
          syntax = {
            code,
            offset,
            expecting: unclosed ? 'separator' : expecting,
            numberBefore: adjacentNumber,
            container: container && { ...container },
          };
        },
      },
      { disallowComments: true, allowTrailingComma: false },
    );
  } catch (err) {
    if (err instanceof RangeError) {
      return [{ key: '', message: 'the JSON is nested too deeply', line: 1, column: 1 }];
    }
    throw err;
  }
  if (syntax !== undefined) {
    const { message, offset } = describeSyntaxProblem(text, syntax);
    return [{ key: '', message, ...lineColumn(text, offset) }];
  }
  return duplicates.map((d) => ({
    key: d.key,
    message: `duplicate key '${d.key}': JSON would silently keep only the last one`,
    ...lineColumn(text, d.offset),
  }));
}
