// Turns whatever went wrong into the one error shape the API answers with, `{ error, message }`,
// and the status code that goes with it. Messages name the input that was wrong.
import type { FastifyError } from 'fastify';
import { ConflictError } from '../controller.js';
import type { ErrorCode, ErrorResponse } from './schemas.js';

export interface ErrorReply {
  status: number;
  body: ErrorResponse;
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** An error raised inside the API layer itself with a status and message meant for the client. */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** "querystring/lines must be <= 10000", "body has an unknown property \"force\"". */
export function describeValidationError(context: string, issue: ValidationIssue): string {
  const where = `${context}${issue.instancePath}`;
  switch (issue.keyword) {
    case 'additionalProperties':
      return `${where} has an unknown ${context === 'querystring' ? 'parameter' : 'property'} "${String(issue.params.additionalProperty)}"`;
    case 'enum':
      return `${where} must be one of: ${(issue.params.allowedValues as unknown[]).join(', ')}`;
    default:
      return `${where} ${issue.message ?? 'is invalid'}`;
  }
}

export function errorReplyFor(err: unknown, contentType: string | undefined, bodyLimit: number): ErrorReply {
  if (err instanceof ConflictError) return reply(409, err.message);
  const fastifyError = err as Partial<FastifyError> & { validationContext?: string };
  if (fastifyError.validation && fastifyError.validation.length > 0) {
    return reply(
      400,
      describeValidationError(
        fastifyError.validationContext ?? 'request',
        fastifyError.validation[0] as ValidationIssue,
      ),
    );
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    switch (fastifyError.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply(
          413,
          `body is larger than the limit of ${bodyLimit} bytes (requests here carry at most {})`,
        );
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply(415, `body must be application/json, not ${contentType ?? 'an unlabeled body'}`);
      default:
        return reply(status, fastifyError.message ?? 'bad request');
    }
  }
  // Anything else is our fault, not the client's: say what failed, never the stack.
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error: 'internal', message: `internal error: ${message}` } };
}

function reply(status: number, message: string): ErrorReply {
  return { status, body: { error: CODE_BY_STATUS[status] ?? 'bad_request', message } };
}
