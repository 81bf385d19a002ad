// Turns TypeBox validation errors into messages a person editing the config can act on:
// the key path, what is allowed, and what was found.
import type { TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import type { ConfigError } from './schema.js';

// Patterns whose meaning is plainer in words than as a regular expression.
const PATTERN_WORDS: Record<string, string> = { '^/': 'an absolute path' };

type SchemaLike = TSchema & Record<string, unknown>;

function range(kind: string, s: SchemaLike): string {
  const min = s.minimum as number | undefined;
  const max = s.maximum as number | undefined;
  if (min !== undefined && max !== undefined) return `${kind} between ${min} and ${max}`;
  if (min !== undefined) return `${kind} of at least ${min}`;
  if (max !== undefined) return `${kind} of at most ${max}`;
  return kind;
}

/** What a value for `schema` must look like, in words ("an integer between 1 and 64"). */
export function describeExpected(schema: TSchema): string {
  const s = schema as SchemaLike;
  if (Array.isArray(s.anyOf)) {
    const consts = (s.anyOf as SchemaLike[]).map((m) => m.const);
    if (consts.every((c) => c !== undefined)) return `one of ${consts.join(', ')}`;
    return (s.anyOf as TSchema[]).map(describeExpected).join(' or ');
  }
  if (s.const !== undefined) return `'${String(s.const)}'`;
  switch (s.type) {
    case 'integer':
      return range('an integer', s);
    case 'number':
      return range('a number', s);
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'an object';
    case 'array': {
      const item = describeExpected(s.items as TSchema);
      return item.startsWith('a string')
        ? `a list of strings${item.slice('a string'.length)}`
        : `a list where each item is ${item}`;
    }
    case 'string': {
      const pattern = s.pattern as string | undefined;
      if (pattern !== undefined && PATTERN_WORDS[pattern]) return PATTERN_WORDS[pattern];
      const examples = s.examples as unknown[] | undefined;
      if (examples?.length) return `a string like '${String(examples[0])}'`;
      if (pattern !== undefined) return `a string matching /${pattern}/`;
      return 'a string';
    }
    default:
      return 'a valid value';
  }
}

/** A found value, short enough for one line: strings quoted, structures as JSON. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return `'${value.length > 60 ? `${value.slice(0, 57)}...` : value}'`;
  if (typeof value === 'number') return String(value); // JSON would print Infinity as null
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** JSON pointer (`/restart/maxDelayMs`, `/systems/0`) to a key path (`restart.maxDelayMs`, `systems[0]`). */
export function pointerToKey(pointer: string): string {
  let key = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) key += `[${seg}]`;
    else key += key === '' ? seg : `.${seg}`;
  }
  return key;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = above;
    }
  }
  return row[b.length];
}

/** The known key closest to a mistyped one, if any is plausibly meant. */
export function suggestKey(unknown: string, known: readonly string[]): string | undefined {
  const u = unknown.toLowerCase();
  let best: { key: string; score: number } | undefined;
  for (const key of known) {
    const k = key.toLowerCase();
    // A missing unit suffix ("memory" for "memoryMiB") is a prefix, not a typo.
    const score = k === u ? 0 : k.startsWith(u) && u.length >= 3 ? 1 : editDistance(u, k);
    if (score <= Math.max(1, Math.min(2, Math.floor(u.length / 3))) && (!best || score < best.score)) {
      best = { key, score };
    }
  }
  return best?.key;
}

function unknownKeyError(e: ValueError, keyOf: (pointer: string) => string): ConfigError {
  const key = keyOf(e.path);
  const parentKey = keyOf(e.path.slice(0, e.path.lastIndexOf('/')));
  const name = key.slice(parentKey === '' ? 0 : parentKey.length + 1);
  const known = Object.keys(((e.schema as SchemaLike).properties ?? {}) as object);
  const suggestion = suggestKey(name, known);
  const qualify = (k: string) => (parentKey === '' ? k : `${parentKey}.${k}`);
  const hint = suggestion
    ? ` (did you mean '${qualify(suggestion)}'?)`
    : `; known keys${parentKey === '' ? '' : ` of ${parentKey}`}: ${known.join(', ')}`;
  return { key, message: `unknown key '${key}'${hint}` };
}

/**
 * Every problem with `value` against `schema`, one per key. `keyOf` names a JSON pointer for
 * the person reading the message (flags use it to say `--cpus` instead of `cpus`).
 */
export function schemaErrors(
  schema: TSchema,
  value: unknown,
  keyOf: (pointer: string) => string = pointerToKey,
): ConfigError[] {
  const errors: ConfigError[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    const key = keyOf(e.path);
    const subject = key === '' ? 'the config' : key;
    switch (e.type) {
      case ValueErrorType.ObjectAdditionalProperties:
        errors.push(unknownKeyError(e, keyOf));
        break;
      case ValueErrorType.ObjectRequiredProperty:
        errors.push({ key, message: `${subject} is missing; it must be ${describeExpected(e.schema)}` });
        break;
      case ValueErrorType.ArrayMinItems:
        errors.push({
          key,
          message: `${subject} must list at least ${String((e.schema as SchemaLike).minItems)} item; got []`,
        });
        break;
      case ValueErrorType.ArrayUniqueItems:
        errors.push({
          key,
          message: `${subject} must not list the same item twice; got ${formatValue(e.value)}`,
        });
        break;
      default:
        errors.push({
          key,
          message: `${subject} must be ${describeExpected(e.schema)}; got ${formatValue(e.value)}`,
        });
    }
  }
  return errors;
}
