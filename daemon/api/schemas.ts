// The API's inputs and outputs as TypeBox schemas: fastify validates and serializes with them,
// the OpenAPI document is generated from them, and the client's types are derived from them
// (type-only imports, so the client never loads TypeBox).
import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { backendNames } from '../backends/backend-list.js';
import { BUILDER_STATES, type DaemonStatus, type DiskResetResult, type StateEvent } from '../controller.js';

/** A string enum as plain JSON Schema `enum`: ajv then says "must be one of ...", not anyOf noise. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: Record<string, unknown> = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/**
 * `schema` or null, as a JSON Schema type list (`"type": ["string", "null"]`), not a union:
 * fast-json-stringify serializes a type list with plain checks, while each `anyOf` needs an ajv
 * validator compiled on the first reply that meets it (~60 ms of the daemon's first `start`).
 */
function Nullable<T extends TSchema>(
  schema: T,
  options: Record<string, unknown> = {},
): TUnsafe<Static<T> | null> {
  const { type } = schema;
  if (typeof type !== 'string')
    throw new Error(`Nullable needs a schema of one type, not ${JSON.stringify(type)}`);
  // Own string keys only: TypeBox's Kind symbol must not come along and say "Object" or "String".
  const nullable: Record<string, unknown> = { ...Object.fromEntries(Object.entries(schema)), ...options };
  nullable.type = [type, 'null'];
  if (Array.isArray(schema.enum)) nullable.enum = [...schema.enum, null];
  return Type.Unsafe<Static<T> | null>(nullable);
}

export const BuilderStateSchema = StringEnum(BUILDER_STATES, {
  description: 'Where the builder VM is in its life cycle.',
});

const IsoTime = Type.String({ description: 'ISO 8601 time' });

export const DaemonStatusSchema = Type.Object(
  {
    state: BuilderStateSchema,
    healthy: Type.Boolean({ description: 'The last SSH probe of the builder succeeded.' }),
    desired: StringEnum(['running', 'stopped'] as const),
    mode: StringEnum(['always', 'on-demand'] as const, {
      description:
        'always: the VM runs while desired; on-demand: the first connection starts it, idle stops it.',
    }),
    onDemand: Nullable(
      Type.Object(
        {
          awake: Type.Boolean({ description: 'Wanted now: woken by a connection or a start request.' }),
          wokenBy: Nullable(Type.String()),
          wokenAt: Nullable(IsoTime),
          heldConnections: Type.Integer({ description: 'Connections waiting for the VM to be ready.' }),
          openConnections: Type.Integer({ description: 'Connections forwarded to the guest.' }),
          lastActivityAt: Nullable(IsoTime),
          idleStopAt: Nullable(IsoTime),
          idleStopAfterMs: Type.Integer(),
          lastFailure: Nullable(
            Type.Object({ at: IsoTime, reason: Type.String(), connections: Type.Integer() }),
          ),
        },
        { description: 'On-demand mode; null in always mode.' },
      ),
    ),
    backend: StringEnum(backendNames()),
    backendReason: Type.String({
      description:
        'Why this backend and accelerator were chosen; a fallback to tcg says why hvf or kvm was not usable.',
    }),
    accel: StringEnum(['hvf', 'kvm', 'tcg'] as const),
    arch: StringEnum(['x86_64', 'aarch64'] as const),
    vm: Type.Object({
      pid: Nullable(Type.Integer()),
      startedAt: Nullable(IsoTime),
      adopted: Type.Boolean({ description: 'Started by an earlier daemon and adopted by this one.' }),
      readyAt: Nullable(
        Type.String({
          description:
            'ISO 8601 time this VM first answered a Nix probe (for an adopted VM: its first probe by this daemon).',
        }),
      ),
      bootToReadyMs: Nullable(
        Type.Number({
          description:
            "From the VM process's start to readyAt: the boot's time to ready; null for an adopted VM.",
        }),
      ),
    }),
    restarts: Type.Integer({ minimum: 0 }),
    lastExit: Nullable(
      Type.Object({
        code: Nullable(Type.Integer()),
        signal: Nullable(Type.String()),
        reason: Type.String(),
        at: IsoTime,
      }),
    ),
    probe: Type.Object({
      ok: Type.Boolean({ description: 'The latest check succeeded.' }),
      check: Nullable(
        StringEnum(['nix', 'ssh'] as const, {
          description:
            "Which check the latest result came from: nix (the guest nix-daemon's worker-protocol handshake over SSH) or ssh (the SSH banner, between Nix probes).",
        }),
      ),
      latencyMs: Nullable(
        Type.Number({
          description:
            "The latest successful Nix probe's round trip, from the SSH server's banner to Nix's answer: never the wait for a boot.",
        }),
      ),
      sshLatencyMs: Nullable(
        Type.Number({
          description:
            "The latest successful SSH check's round trip: a request on the kept SSH connection and its answer.",
        }),
      ),
      nixVersion: Nullable(Type.String()),
      at: Nullable(IsoTime),
      nixAt: Nullable(Type.String({ description: 'ISO 8601 time Nix last answered a probe.' })),
      error: Nullable(Type.String()),
    }),
    ssh: Type.Object({ host: Type.Literal('127.0.0.1'), port: Type.Integer() }),
    backoff: Nullable(Type.Object({ attempt: Type.Integer(), nextStartAt: Nullable(IsoTime) })),
    failedReason: Nullable(Type.String()),
    configPath: Type.String(),
    stateDir: Type.String(),
    errors: Type.Array(Type.Object({ source: Type.String(), message: Type.String(), at: IsoTime })),
    image: Nullable(
      Type.Object(
        {
          phase: StringEnum(['index', 'packages', 'image'] as const, {
            description:
              'index: reading the signed package indexes; packages: fetching and unpacking; image: writing the kernel and initramfs.',
          }),
          packages: Type.Integer({
            minimum: 0,
            description: 'Packages fetched (or found cached) and unpacked so far.',
          }),
          bytes: Type.Integer({ minimum: 0, description: 'Bytes of those packages.' }),
          message: Type.String(),
          startedAt: IsoTime,
          updatedAt: IsoTime,
        },
        { description: 'The guest image build of the start in progress; null when none runs.' },
      ),
    ),
    daemon: Type.Object({ pid: Type.Integer(), version: Type.String(), startedAt: IsoTime }),
  },
  { description: 'What the daemon knows about the builder right now.' },
);

export const ERROR_CODES = [
  'bad_request',
  'not_found',
  'method_not_allowed',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const ErrorSchema = Type.Object(
  {
    error: StringEnum(ERROR_CODES, { description: 'A stable code to branch on.' }),
    message: Type.String({ description: 'For people: names the input that was wrong.' }),
  },
  { description: 'Every error the API answers with.' },
);

export const HealthyResponseSchema = Type.Object({
  healthy: Type.Literal(true),
  state: BuilderStateSchema,
});
export const UnhealthyResponseSchema = Type.Object({
  healthy: Type.Literal(false),
  state: BuilderStateSchema,
  reason: Type.String({ description: 'Why the builder cannot take builds now.' }),
});
export const HealthSchema = Type.Union([HealthyResponseSchema, UnhealthyResponseSchema]);

export const LOG_SOURCES = ['console', 'daemon'] as const;
export const LogsQuerySchema = Type.Object(
  {
    source: StringEnum(LOG_SOURCES, {
      default: 'daemon',
      description: "'console': the guest's serial console (current boot); 'daemon': linuxkitd's own log.",
    }),
    lines: Type.Integer({
      minimum: 1,
      maximum: 10000,
      default: 200,
      description: 'How many of the last lines.',
    }),
  },
  { additionalProperties: false },
);
export const LogsResponseSchema = Type.Object({
  source: StringEnum(LOG_SOURCES),
  lines: Type.Array(Type.String()),
});

/** POST bodies carry nothing today; `{}` or no body at all. */
export const EmptyBodySchema = Type.Object({}, { additionalProperties: false });

export const ActionResponseSchema = Type.Object({
  accepted: Type.Literal(true),
  status: DaemonStatusSchema,
});

export const DiskResetResponseSchema = Type.Object({
  path: Type.String({ description: "The store disk's path (<state dir>/nix-disk.raw)" }),
  removedBytes: Nullable(Type.Integer({ minimum: 0 }), {
    description: 'The size of the disk that was removed; null when there was none',
  }),
  status: DaemonStatusSchema,
});

export const StateEventSchema = Type.Object(
  {
    at: IsoTime,
    type: StringEnum([
      'state',
      'exit',
      'probe',
      'config',
      'adopted',
      'error',
      'repair',
      'image',
      'wake',
      'idle-stop',
      'wake-failed',
      'accel-fallback',
      'disk-reset',
    ] as const),
    state: Type.Optional(BuilderStateSchema),
    from: Type.Optional(BuilderStateSchema),
    message: Type.String(),
    initial: Type.Optional(
      Type.Boolean({
        description: 'Only on the first line: a snapshot of the current state, not a transition.',
      }),
    ),
    status: Type.Optional(DaemonStatusSchema),
  },
  { additionalProperties: true, description: 'One line of /v1/events.' },
);

export type DaemonStatusResponse = Static<typeof DaemonStatusSchema>;
export type ErrorResponse = Static<typeof ErrorSchema>;
export type HealthResponse = Static<typeof HealthSchema>;
export type LogsQuery = Static<typeof LogsQuerySchema>;
export type LogsResponse = Static<typeof LogsResponseSchema>;
export type ActionResponse = Static<typeof ActionResponseSchema>;
export type DiskResetResponse = Static<typeof DiskResetResponseSchema>;
export type LogSource = (typeof LOG_SOURCES)[number];

// Compile-time guard: if DaemonStatus or StateEvent in controller.ts change, this stops compiling
// until the schema follows, so the API can never silently drop or reject a field.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const statusSchemaMatches: Same<DaemonStatusResponse, DaemonStatus> = true;
const diskResetSchemaMatches: Same<DiskResetResponse, DiskResetResult> = true;
const eventSchemaCovers: Static<typeof StateEventSchema> extends StateEvent ? true : false = true;
void statusSchemaMatches;
void diskResetSchemaMatches;
void eventSchemaCovers;
