// The OpenAPI 3.1 document, generated from the same route table and schemas the server uses.
// OpenAPI 3.1 takes JSON Schema as is, so TypeBox's output goes in unchanged; shared schemas are
// lifted into components and referenced.
import type { TSchema } from '@sinclair/typebox';
import { ROUTES, type RouteSpec } from './routes.js';
import {
  ActionResponseSchema,
  DaemonStatusSchema,
  ErrorSchema,
  HealthyResponseSchema,
  LogsResponseSchema,
  StateEventSchema,
  UnhealthyResponseSchema,
} from './schemas.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const COMPONENTS: ReadonlyArray<[string, TSchema]> = [
  ['DaemonStatus', DaemonStatusSchema],
  ['Error', ErrorSchema],
  ['ActionResponse', ActionResponseSchema],
  ['Healthy', HealthyResponseSchema],
  ['Unhealthy', UnhealthyResponseSchema],
  ['LogsResponse', LogsResponseSchema],
  ['StateEvent', StateEventSchema],
];

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid query or body; the message names the field',
  404: 'No such route',
  405: 'Method not allowed on this path (see the Allow header)',
  409: 'Conflicts with what the daemon is doing now',
  413: 'Body too large',
  415: 'Body is not application/json',
  500: 'The daemon failed to answer',
};

const SUCCESS_DESCRIPTIONS: Record<number, string> = {
  200: 'OK',
  202: 'Accepted; the status right after acceptance',
  503: 'The builder cannot take builds now',
};

/** Plain JSON of a schema, with every shared schema (by identity) replaced by a $ref. */
function toJson(schema: TSchema, isRoot: boolean): Json {
  if (!isRoot) {
    const named = COMPONENTS.find(([, s]) => s === schema);
    if (named) return { $ref: `#/components/schemas/${named[0]}` };
  }
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = convert(value);
  }
  return out;
}

function convert(value: unknown): Json {
  if (Array.isArray(value)) return value.map(convert);
  if (value !== null && typeof value === 'object') return toJson(value as TSchema, false);
  return value as Json;
}

function operation(route: RouteSpec): { [key: string]: Json } {
  const op: { [key: string]: Json } = { operationId: route.operationId, summary: route.summary };
  if (route.description) op.description = route.description;
  const query = route.schema.querystring;
  if (query) {
    const required = new Set<string>((query.required as string[] | undefined) ?? []);
    op.parameters = Object.entries(query.properties as Record<string, TSchema>).map(([name, schema]) => ({
      name,
      in: 'query',
      required: required.has(name),
      schema: toJson(schema, false),
    }));
  }
  if (route.schema.body) {
    op.requestBody = {
      required: false,
      content: { 'application/json': { schema: toJson(route.schema.body, false) } },
    };
  }
  const responses: { [key: string]: Json } = {};
  if (route.stream) {
    responses[String(route.stream.status)] = {
      description: 'One JSON document per line',
      content: { [route.stream.contentType]: { schema: toJson(route.stream.lineSchema, false) } },
    };
  }
  for (const [status, schema] of Object.entries(route.schema.response)) {
    const code = Number(status);
    responses[status] = {
      description: SUCCESS_DESCRIPTIONS[code] ?? ERROR_DESCRIPTIONS[code] ?? 'See the schema',
      content: { 'application/json': { schema: toJson(schema, false) } },
    };
  }
  op.responses = responses;
  return op;
}

export function buildOpenApiDocument(opts: { version: string }): { [key: string]: Json } {
  const paths: { [key: string]: { [key: string]: Json } } = {};
  for (const route of ROUTES) {
    paths[route.url] = { ...(paths[route.url] ?? {}), [route.method.toLowerCase()]: operation(route) };
  }
  const schemas: { [key: string]: Json } = {};
  for (const [name, schema] of COMPONENTS) schemas[name] = toJson(schema, true);
  return {
    openapi: '3.1.0',
    info: {
      title: 'linuxkitd control API',
      version: opts.version,
      description:
        'HTTP/JSON over the Unix socket of linuxkitd (0600, owner only). Every error is ' +
        '`{ "error": <code>, "message": <text> }`; unknown routes answer 404 and a wrong method 405 ' +
        'with an Allow header.',
    },
    servers: [{ url: 'http://localhost', description: 'Over the Unix socket, e.g. curl --unix-socket PATH' }],
    paths,
    components: { schemas },
  };
}

/** The exact text of docs/openapi.json, so the committed file can be compared byte for byte. */
export function renderOpenApiDocument(doc: { [key: string]: Json }): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
