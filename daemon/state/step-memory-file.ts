// `step-memory.json`: what the reconcile step remembers (the state it decided, failures in a row,
// the backoff deadline, why it gave up), so a daemon restarted by launchd or systemd resumes a
// backoff and stays `failed` instead of crash-looping the VM again. Parsing is strict and names
// the bad field: an unreadable file is reported and replaced by a fresh memory, never trusted.
import { BUILDER_STATES, type BuilderState } from '../controller.js';
import type { ExitKind, StepMemory } from '../reconciler/types.js';

export const STEP_MEMORY_VERSION = 1;

const STATES: readonly BuilderState[] = BUILDER_STATES;
const EXIT_KINDS: readonly ExitKind[] = ['crash', 'reboot', 'requested'];

export class StepMemoryFileError extends Error {
  override readonly name = 'StepMemoryFileError';
}

export function renderStepMemoryFile(memory: StepMemory): string {
  return `${JSON.stringify({ version: STEP_MEMORY_VERSION, memory }, null, 2)}\n`;
}

/** The memory in `text`; throws StepMemoryFileError naming the first field that is wrong. */
export function parseStepMemoryFile(text: string): StepMemory {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new StepMemoryFileError(`not JSON (${(err as Error).message})`);
  }
  const top = record(doc, 'the file');
  if (top.version !== STEP_MEMORY_VERSION) {
    throw new StepMemoryFileError(
      `version is ${JSON.stringify(top.version)}, expected ${STEP_MEMORY_VERSION}`,
    );
  }
  const m = record(top.memory, 'memory');
  const state = oneOf(m.state, STATES, 'memory.state');
  return {
    state,
    consecutiveFailures: count(m.consecutiveFailures, 'memory.consecutiveFailures'),
    lastExit: m.lastExit === null ? null : lastExit(m.lastExit),
    failedReason: nullable(m.failedReason, 'string', 'memory.failedReason') as string | null,
    backoffUntil: time(m.backoffUntil, 'memory.backoffUntil', true),
    healthySince: time(m.healthySince, 'memory.healthySince', true),
    lastStateChangeAt: time(m.lastStateChangeAt, 'memory.lastStateChangeAt', false)!,
  };
}

function lastExit(v: unknown): StepMemory['lastExit'] {
  const e = record(v, 'memory.lastExit');
  const reboot =
    e.reboot === undefined
      ? {}
      : { reboot: nullable(e.reboot, 'boolean', 'memory.lastExit.reboot') === true };
  return {
    at: time(e.at, 'memory.lastExit.at', false)!,
    code: nullable(e.code, 'number', 'memory.lastExit.code') as number | null,
    signal: nullable(e.signal, 'string', 'memory.lastExit.signal') as string | null,
    reason: nullable(e.reason, 'string', 'memory.lastExit.reason', false) as string,
    kind: oneOf(e.kind, EXIT_KINDS, 'memory.lastExit.kind'),
    ...reboot,
  };
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new StepMemoryFileError(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], what: string): T {
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw new StepMemoryFileError(`${what} is ${JSON.stringify(v)}, expected one of ${allowed.join(', ')}`);
}

function count(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw new StepMemoryFileError(`${what} is ${JSON.stringify(v)}, expected a whole number >= 0`);
}

function time(v: unknown, what: string, mayBeNull: boolean): number | null {
  if (v === null && mayBeNull) return null;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  const want = mayBeNull ? 'epoch milliseconds or null' : 'epoch milliseconds';
  throw new StepMemoryFileError(`${what} is ${JSON.stringify(v)}, expected ${want}`);
}

function nullable(
  v: unknown,
  type: 'string' | 'number' | 'boolean',
  what: string,
  mayBeNull = true,
): unknown {
  if (v === null && mayBeNull) return null;
  if (typeof v === type) return v;
  throw new StepMemoryFileError(
    `${what} is ${JSON.stringify(v)}, expected a ${type}${mayBeNull ? ' or null' : ''}`,
  );
}
