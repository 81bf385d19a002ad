import t from 'tap';
import { checkJsonText, lineColumn } from '../../daemon/config/json-text.js';

t.test('syntax errors name the first problem with its line and column', async (t) => {
  const cases: Array<[string, number, number, string]> = [
    ['', 1, 1, 'the file is empty; expected a JSON object such as {}'],
    ['  \n ', 2, 2, 'the file is empty; expected a JSON object such as {}'],
    ['{"cpus": 4,}', 1, 12, 'a trailing comma before } is not allowed in JSON'],
    ['{"systems": ["a-b",]}', 1, 20, 'a trailing comma before ] is not allowed in JSON'],
    [
      '{\n  "cpus": 4\n  "accel": "tcg"\n}',
      3,
      3,
      `expected ',' or '}' after the value of "cpus" but found '"'`,
    ],
    ['{"cpus" 4}', 1, 9, `expected ':' after the property name "cpus" but found '4'`],
    ["{'cpus': 4}", 1, 2, 'property names need double quotes, not single quotes'],
    ['{"backend": \'qemu\'}', 1, 13, 'strings need double quotes, not single quotes'],
    ['{cpus: 4}', 1, 2, "expected a property name in double quotes but found 'c'"],
    ['// comment\n{}', 1, 1, 'comments are not allowed in JSON'],
    ['{\n  // comment\n}', 2, 3, 'comments are not allowed in JSON'],
    ['{"cpus": 4', 1, 11, "expected ',' or '}' after the value of \"cpus\" but found the end of the file"],
    ['{"cpus": }', 1, 10, "expected a value but found '}'"],
    ['{"cpus": 01}', 1, 11, 'numbers cannot start with 0'],
    ['{"cpus": -}', 1, 10, 'invalid number'],
    ['{"cpus": NaN}', 1, 10, "expected a value but found 'N'"],
    ['{"a": "x\ny"}', 1, 9, 'a line break inside a string; write it as an escape such as \\n'],
    ['{"a": "\\q"}', 1, 8, 'invalid escape \\q in a string'],
    ['{"a": "\\u12"}', 1, 8, '\\u must be followed by four hex digits'],
    ['{"a": "open', 1, 7, 'unterminated string'],
    ['{} {}', 1, 4, "unexpected '{' after the end of the JSON value"],
    ['[1 2]', 1, 4, "expected ',' or ']' in the list but found '2'"],
  ];
  for (const [text, line, column, message] of cases) {
    t.same(checkJsonText(text), [{ key: '', message, line, column }], JSON.stringify(text));
  }
});

t.test('duplicate keys are reported with their dotted path, each one', async (t) => {
  const text =
    '{\n "cpus": 1,\n "restart": {"jitter": 0, "jitter": 1},\n "cpus": 2,\n "list": [{"a": 1, "a": 2}]\n}';
  t.same(checkJsonText(text), [
    {
      key: 'restart.jitter',
      message: "duplicate key 'restart.jitter': JSON would silently keep only the last one",
      line: 3,
      column: 27,
    },
    {
      key: 'cpus',
      message: "duplicate key 'cpus': JSON would silently keep only the last one",
      line: 4,
      column: 2,
    },
    {
      key: 'list[0].a',
      message: "duplicate key 'list[0].a': JSON would silently keep only the last one",
      line: 5,
      column: 20,
    },
  ]);
  t.same(checkJsonText('{"a": {"x": 1}, "b": {"x": 1}}'), [], 'the same key in different objects is fine');
});

t.test('the scanner accepts exactly what JSON.parse accepts', async (t) => {
  const texts = [
    '{}',
    '[]',
    '0',
    '-0',
    '1.5e+10',
    '-2E-3',
    '"\\u00e9\\n\\t\\"\\\\\\/"',
    'true',
    'null',
    ' {"a" : [ 1 , {"b":false} ] } ',
    '{"a":"é ✓ 😀"}',
    '[[[[]]]]',
    '1.',
    '.5',
    '+1',
    '1e',
    '0x10',
    '[1,]',
    '{"a":1,}',
    'tru',
    '"\t"',
    '{"a" 1}',
    '[1]x',
    '\u00a0{}',
  ];
  for (const text of texts) {
    let parses = true;
    try {
      JSON.parse(text);
    } catch {
      parses = false;
    }
    t.equal(checkJsonText(text).length === 0, parses, JSON.stringify(text));
  }
});

t.test('lineColumn counts from 1', async (t) => {
  t.same(lineColumn('ab\ncd', 0), { line: 1, column: 1 });
  t.same(lineColumn('ab\ncd', 4), { line: 2, column: 2 });
});
