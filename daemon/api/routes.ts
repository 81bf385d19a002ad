// The API's routes as data: method, path and schemas. The server registers a handler for each
// entry and the OpenAPI document is generated from the same table, so the two cannot drift.
import type { TSchema } from '@sinclair/typebox';
import {
  ActionResponseSchema,
  DaemonStatusSchema,
  DiskResetResponseSchema,
  EmptyBodySchema,
  ErrorSchema,
  HealthyResponseSchema,
  LogsQuerySchema,
  LogsResponseSchema,
  StateEventSchema,
  UnhealthyResponseSchema,
} from './schemas.js';

export type OperationId =
  | 'getStatus'
  | 'start'
  | 'stop'
  | 'restart'
  | 'resetDisk'
  | 'getHealth'
  | 'getLogs'
  | 'streamEvents';

export interface RouteSpec {
  operationId: OperationId;
  method: 'GET' | 'POST';
  url: string;
  summary: string;
  description?: string;
  schema: {
    querystring?: TSchema;
    body?: TSchema;
    /** JSON responses by status code (fastify serializes with these). */
    response: Record<number, TSchema>;
  };
  /** A response that is a stream of JSON lines instead of one JSON document. */
  stream?: { status: number; contentType: string; lineSchema: TSchema };
}

const actionErrors = {
  400: ErrorSchema,
  409: ErrorSchema,
  413: ErrorSchema,
  415: ErrorSchema,
  500: ErrorSchema,
};

function actionRoute(operationId: 'start' | 'stop' | 'restart', summary: string): RouteSpec {
  return {
    operationId,
    method: 'POST',
    url: `/v1/${operationId}`,
    summary,
    description:
      'Accepted at once: the daemon works toward the new desired state in the background. ' +
      'The status in the answer is the one right after the request was accepted (the VM may ' +
      'still be the old one); follow /v1/events or poll /v1/status to see the outcome. ' +
      'The body may be empty or `{}`.',
    schema: { body: EmptyBodySchema, response: { 202: ActionResponseSchema, ...actionErrors } },
  };
}

export const ROUTES: readonly RouteSpec[] = [
  {
    operationId: 'getStatus',
    method: 'GET',
    url: '/v1/status',
    summary: 'The builder and daemon status',
    schema: { response: { 200: DaemonStatusSchema, 500: ErrorSchema } },
  },
  actionRoute('start', 'Desire the builder running and start it'),
  actionRoute('stop', 'Desire the builder stopped and power it off'),
  actionRoute('restart', 'Replace the builder VM with a new one'),
  {
    operationId: 'resetDisk',
    method: 'POST',
    url: '/v1/disk/reset',
    summary: 'Start the store over: remove the store disk while the builder is stopped',
    description:
      "Removes <state dir>/nix-disk.raw, the guest's /nix (diskGiB > 0); the next boot formats a " +
      'new one at the size diskGiB asks. Done when answered (200). Refused with 409 unless the ' +
      'builder is stopped or failed with no VM and no start in flight. The body may be empty or `{}`.',
    schema: {
      body: EmptyBodySchema,
      response: { 200: DiskResetResponseSchema, ...actionErrors },
    },
  },
  {
    operationId: 'getHealth',
    method: 'GET',
    url: '/v1/health',
    summary: 'Whether the builder can take builds now',
    description: '200 when the last SSH probe succeeded, 503 with a reason otherwise.',
    schema: { response: { 200: HealthyResponseSchema, 503: UnhealthyResponseSchema, 500: ErrorSchema } },
  },
  {
    operationId: 'getLogs',
    method: 'GET',
    url: '/v1/logs',
    summary: "The last lines of the guest console or the daemon's log",
    schema: {
      querystring: LogsQuerySchema,
      response: { 200: LogsResponseSchema, 400: ErrorSchema, 500: ErrorSchema },
    },
  },
  {
    operationId: 'streamEvents',
    method: 'GET',
    url: '/v1/events',
    summary: 'State events as newline-delimited JSON, until the client leaves',
    description:
      'The first line is a snapshot (`initial: true`, with the full `status`); every later line ' +
      'is one event as the daemon emits it. The stream stays open until the client disconnects ' +
      'or the daemon shuts down.',
    schema: { response: { 500: ErrorSchema } },
    stream: { status: 200, contentType: 'application/x-ndjson', lineSchema: StateEventSchema },
  },
];

/** Methods served on each path, for 405 answers with an Allow header. */
export function allowedMethodsByPath(routes: readonly RouteSpec[] = ROUTES): Map<string, string[]> {
  const byPath = new Map<string, string[]>();
  for (const route of routes) {
    byPath.set(route.url, [...(byPath.get(route.url) ?? []), route.method]);
  }
  return byPath;
}
