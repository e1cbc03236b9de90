import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { jsonSchemaTransform, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { AiConfigs } from '../ai-config/service.js';
import { AuthFailureLimiter } from '../auth/failures.js';
import { bearerTokenHash } from '../auth/tokens.js';
import { gatewayLogFields, gatewayRoutes } from '../gateway/routes.js';
import type { Upstream, UpstreamTimeouts } from '../gateway/upstreams.js';
import { runtimeRoutes } from '../runtime/routes.js';
import type { Storage } from '../storage/types.js';
import { errorBody, registerErrorHandler } from './errors.js';
import { policyRoutes } from './policy-routes.js';
import { aiConfigRoutes } from './routes.js';
import { serializerCompiler } from './serializer.js';

export const BODY_LIMIT = 16 * 1024;

export interface AppOptions {
  storage: Storage;
  configs: AiConfigs;
  logger: Logger;
  /** Requests per minute per token (or per address without one). */
  rateLimitPerMinute?: number;
  upstreams: Map<string, Upstream>;
  upstreamTimeouts?: UpstreamTimeouts;
  /** Failed authentications per minute per client address before it gets 429s. */
  authFailuresPerMinute?: number;
  /** Proxies trusted to name the client (RIGBOX_TRUST_PROXY); none by default. */
  trustProxy?: boolean | number | string[];
  /** The base URL workspace processes reach this service at; default: from each request. */
  publicUrl?: string | undefined;
}

/**
 * A whole request (headers and body) must arrive within this; a slow or stalled body is cut. Node
 * checks every 30 s, so the cut comes 30 to 60 s in.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Ids are safe to log; anything else in a path is the caller's text and may hold a secret. */
const LOGGABLE_ID = /^(?:ws|tok|evt)_[0-9a-f]{1,40}$/;

export const OPENAPI_INFO = {
  title: 'Rigbox AI config API',
  description:
    'System of record for Rigbox workspace AI configs. Provider keys are write-only: encrypted at rest, never returned, never logged.',
  version: '0.1.0',
};

/** Security headers for JSON answers: nothing to render, frame or cache. */
const API_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};
/** The docs page loads swagger-ui's own scripts and styles from this origin. */
const DOCS_HEADERS = {
  ...API_HEADERS,
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
};

/**
 * Errors the router raises before any route or hook runs (Fastify's `frameworkErrors`). Left to
 * Fastify, a path parameter over 100 characters got a 414 that quoted the raw path back, without our
 * error shape or security headers, and a malformed URL a 400 likewise. A path parameter is input
 * like any other: a 400 in our shape, quoting nothing.
 */
function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.headers(API_HEADERS);
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH' || err.code === 'FST_ERR_BAD_URL') {
    const message =
      err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? 'a path parameter is longer than allowed'
        : 'the URL is not valid (malformed percent-encoding?)';
    request.log.info({ method: request.method, status: 400, code: err.code }, 'request');
    return reply.code(400).send(errorBody(400, 'invalid_request', message));
  }
  request.log.error({ err: { type: err.name, code: err.code } }, 'router error');
  return reply.code(500).send(errorBody(500, 'internal_error', 'Internal Server Error'));
}

/**
 * The answer to a request Node refuses before Fastify sees it (not HTTP/1.1, headers over Node's
 * limit, not whole within REQUEST_TIMEOUT_MS): the API's error shape and security headers, as on
 * every other answer, instead of Fastify's default body. Nothing of the request is echoed or
 * logged: the parser's error carries the raw bytes, which may hold a token.
 */
function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', `the request did not arrive whole within ${REQUEST_TIMEOUT_MS / 1000} s`]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', "the request's headers are larger than the server accepts"]
        : [400, 'bad_request', 'the request is not well-formed HTTP/1.1'];
  this.log.debug({ code: err.code }, 'client error');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(status, code, message));
  const head = Object.entries({
    ...API_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`);
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    // We log one line per request ourselves (onResponse below), without headers or bodies.
    logController: new LogController({ disableRequestLogging: true }),
    // A hop count is one of the forms Fastify takes (its types list only the others).
    trustProxy: (options.trustProxy ?? false) as boolean,
    requestTimeout: REQUEST_TIMEOUT_MS,
    frameworkErrors,
    clientErrorHandler,
  });
  app.decorate('authFailures', new AuthFailureLimiter(options.authFailuresPerMinute));
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);

  // Fixed headers, computed once (helmet built its policy per request, a third of our GET time),
  // set as the request arrives so that every answer carries them: errors, 404s and 429s included.
  // A callback hook, not an async one: this runs on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(request.url.startsWith('/docs') ? DOCS_HEADERS : API_HEADERS);
    done();
  });
  await app.register(rateLimit, {
    max: options.rateLimitPerMinute ?? 1200,
    timeWindow: 60_000,
    keyGenerator: (request) => {
      const tokenHash = bearerTokenHash(request);
      return tokenHash ? `t:${tokenHash}` : `a:${request.ip}`;
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: OPENAPI_INFO,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  // One line per request, after it is answered: method, the route's pattern (never the raw path
  // or query: a key pasted into a URL would reach the log), the ids it named, status, time.
  app.addHook('onResponse', (request, reply, done) => {
    const id = (request.params as { id?: unknown } | undefined)?.id;
    const gateway = gatewayLogFields.get(request);
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? null,
        ...(typeof id === 'string' && LOGGABLE_ID.test(id) ? { id } : {}),
        ...(gateway ? { provider: gateway.provider, workspace: gateway.workspace } : {}),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
    done();
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, async () => ({
    status: 'ok',
    storage: options.storage.kind,
  }));

  await app.register(aiConfigRoutes, { storage: options.storage, configs: options.configs });
  await app.register(policyRoutes, { storage: options.storage, configs: options.configs });
  await app.register(runtimeRoutes, {
    storage: options.storage,
    configs: options.configs,
    upstreams: options.upstreams,
    publicUrl: options.publicUrl,
  });
  await app.register(gatewayRoutes, {
    storage: options.storage,
    configs: options.configs,
    upstreams: options.upstreams,
    ...(options.upstreamTimeouts ? { timeouts: options.upstreamTimeouts } : {}),
  });
  return app;
}
