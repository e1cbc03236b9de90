import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { EnvelopeError } from '../crypto/envelope.js';
import { ApiError, PolicyViolationError, RetryLaterError } from '../errors.js';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/**
 * Framework errors we answer with a fixed message of our own: their messages can quote the body
 * (JSON.parse's "Unexpected token ... in '{"api_key": ...'"), and the body may hold a key.
 */
const FIXED_MESSAGES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [
    400,
    'invalid_json',
    'request body is empty but Content-Type is application/json',
  ],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'body_too_large', 'request body is larger than the 16 KiB limit'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'send the body as application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    400,
    'invalid_content_length',
    'Content-Length does not match the body',
  ],
};

export function errorBody(
  statusCode: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
) {
  return { statusCode, error: STATUS_TEXT[statusCode] ?? 'Error', code, message, ...extra };
}

/** The one error handler: 4xx say what is wrong with which field; 5xx say only "Internal Server Error". */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ApiError) {
      if (err instanceof RetryLaterError) reply.header('retry-after', String(err.retryAfterSeconds));
      return reply.code(err.statusCode).send(
        errorBody(err.statusCode, err.code, err.message, {
          ...(err.field ? { field: err.field } : {}),
          ...(err instanceof PolicyViolationError ? { rule: err.rule } : {}),
        }),
      );
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const issues = err.validation.map((v) => {
        const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
        // An unknown field is reported at its parent; name the field itself.
        const keys = (v.params as { keys?: unknown })?.keys;
        const unknown = Array.isArray(keys) ? keys.map(String).join(',') : '';
        const field = [path, unknown].filter(Boolean).join('.') || '(root)';
        return { field, message: v.message ?? 'invalid' };
      });
      const where = err.validationContext ?? 'body';
      const message = issues.map((i) => `${where}.${i.field}: ${i.message}`).join('; ');
      return reply.code(400).send(errorBody(400, 'invalid_request', message, { issues }));
    }
    const fixed = err.code ? FIXED_MESSAGES[err.code] : undefined;
    if (fixed) return reply.code(fixed[0]).send(errorBody(fixed[0], fixed[1], fixed[2]));
    const status = err.statusCode ?? 500;
    if (status === 429) {
      return reply
        .code(429)
        .send(errorBody(429, 'rate_limited', 'too many requests for this token; slow down and retry'));
    }
    if (status >= 400 && status < 500) {
      // Other framework 4xx: a generic message (theirs might quote input).
      return reply.code(status).send(errorBody(status, 'bad_request', STATUS_TEXT[status] ?? 'bad request'));
    }
    if (err instanceof EnvelopeError) {
      request.log.error({ record: err.recordId }, 'stored key failed to decrypt: refusing to use it');
    } else {
      request.log.error(
        { err: { type: err.name, code: err.code, message: err.message, stack: err.stack } },
        'request failed',
      );
    }
    return reply.code(500).send(errorBody(500, 'internal_error', 'Internal Server Error'));
  });
  // The path is not repeated: it is the caller's input, and may hold a key pasted in the wrong place.
  app.setNotFoundHandler((_request, reply) => {
    reply.code(404).send(errorBody(404, 'not_found', 'no route for this method and path; see /openapi.json'));
  });
}
