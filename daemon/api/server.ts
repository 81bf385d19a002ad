// The JSON API over the daemon's Unix socket. Handlers hold no logic: fastify validates with the
// route schemas, each handler calls one controller method, and errors become `{ error, message }`.
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { DaemonController } from '../controller.js';
import { ApiRequestError, errorReplyFor } from './errors.js';
import { EventStreams } from './events.js';
import { healthOf } from './health.js';
import { ROUTES, allowedMethodsByPath, type OperationId } from './routes.js';
import type { LogsQuery } from './schemas.js';

export { listenOnUnixSocket, checkSocketPath } from './socket.js';

export interface ApiServerOptions {
  /** A pino logger for errors and accepted actions; false or absent logs nothing. */
  logger?: FastifyBaseLogger | false;
  /** Largest request body in bytes; the API's bodies are `{}`, so this stays small. */
  bodyLimit?: number;
}

export const DEFAULT_BODY_LIMIT = 16 * 1024;

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown> | FastifyReply;

export function buildApiServer(controller: DaemonController, opts: ApiServerOptions = {}): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // Cast: a custom loggerInstance makes the instance generic over that logger; callers need the base type.
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit,
    // Only the routes in the table exist; HEAD twins would be undocumented extras.
    exposeHeadRoutes: false,
    // A CLI polling /v1/status must not flood the daemon log; errors and actions are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    // fastify's own 503 while closing has another body shape (and /v1/health owns 503); requests
    // still arriving then are answered normally until the server is gone.
    return503OnClosing: false,
    // Unknown query parameters and body fields are errors, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    // Errors fastify raises before routing (a malformed URL) get the same { error, message } shape.
    frameworkErrors: (err, request, reply) => {
      const { status, body } = errorReplyFor(err, request.headers['content-type'], bodyLimit);
      void (reply as FastifyReply).code(status).type('application/json').send(body);
    },
  }) as unknown as FastifyInstance;

  const streams = new EventStreams(controller);
  const handlers: Record<OperationId, Handler> = {
    getStatus: async () => controller.status(),
    start: async (_req, reply) => reply.code(202).send({ accepted: true, status: await controller.start() }),
    stop: async (_req, reply) => reply.code(202).send({ accepted: true, status: await controller.stop() }),
    restart: async (_req, reply) =>
      reply.code(202).send({ accepted: true, status: await controller.restart() }),
    resetDisk: async () => controller.resetDisk(),
    getHealth: async (_req, reply) => {
      const health = healthOf(controller.status());
      return reply.code(health.healthy ? 200 : 503).send(health);
    },
    getLogs: async (request) => {
      const { source, lines } = request.query as LogsQuery;
      // Ajv's query coercion lets "Infinity" and 1e309 through `integer` + `maximum` (ajv#2212).
      if (!Number.isSafeInteger(lines))
        throw new ApiRequestError(400, 'querystring/lines must be an integer between 1 and 10000');
      return { source, lines: await controller.logs(source, lines) };
    },
    streamEvents: (_req, reply) => streams.serve(reply),
  };

  installJsonOnlyBodyParser(app);
  for (const route of ROUTES) {
    app.route({
      method: route.method,
      url: route.url,
      schema: route.schema,
      // "No body" and "{}" mean the same; validate both against the same schema.
      ...(route.schema.body ? { preValidation: defaultEmptyBody } : {}),
      handler: handlers[route.operationId],
    });
  }

  const methodsByPath = allowedMethodsByPath();
  const routeList = ROUTES.map((r) => `${r.method} ${r.url}`).join(', ');
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = methodsByPath.get(path);
    if (allowed) {
      reply.header('allow', allowed.join(', '));
      throw new ApiRequestError(
        405,
        `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
      );
    }
    throw new ApiRequestError(404, `no route ${request.method} ${path}; the routes are ${routeList}`);
  });

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = errorReplyFor(err, request.headers['content-type'], bodyLimit);
    if (status >= 500) request.log.error({ err, url: request.url }, 'API request failed');
    return reply.code(status).type('application/json').send(body);
  });

  app.addHook('onResponse', async (request, reply) => {
    if (request.method === 'POST' && reply.statusCode === 202) {
      request.log.info({ url: request.url }, 'API action accepted');
    }
  });

  // Event streams never end on their own: end them so close() does not wait for clients.
  app.addHook('preClose', async () => streams.endAll());
  return app;
}

function installJsonOnlyBodyParser(app: FastifyInstance): void {
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  // Drops text/plain and anything else: a body that is not JSON is a 415, not a string.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text.length === 0) return done(null, undefined);
    try {
      JSON.parse(text);
    } catch (err) {
      return done(new ApiRequestError(400, `body is not valid JSON: ${(err as Error).message}`), undefined);
    }
    // The default parser adds prototype-poisoning protection on top; valid JSON it refuses is that.
    defaultJsonParser(request, text, (err, parsed) =>
      err
        ? done(
            new ApiRequestError(400, 'body must not contain "__proto__" or "constructor.prototype" keys'),
            undefined,
          )
        : done(null, parsed),
    );
  });
}

async function defaultEmptyBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}
