import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Agent, errors as undiciErrors } from 'undici';
import { type AiProviderId, aiProvider, MANAGED_PROVIDER_IDS } from '../ai-config/providers.js';
import type { AiConfigs } from '../ai-config/service.js';
import { refuseFailingAddress } from '../auth/tokens.js';
import { errorBody } from '../http/errors.js';
import { hashToken } from '../ids.js';
import { GATEWAY_TOKEN_PREFIX } from '../runtime/routes.js';
import type { GatewayCaller, Storage, User } from '../storage/types.js';
import { currentPeriod, PLAN_CREDITS } from './credits.js';
import { GatewayTargetError, parseGatewayTarget } from './target.js';
import { DEFAULT_UPSTREAM_TIMEOUTS, type Upstream, type UpstreamTimeouts } from './upstreams.js';

export interface GatewayOptions {
  storage: Storage;
  configs: AiConfigs;
  upstreams: Map<string, Upstream>;
  timeouts?: UpstreamTimeouts;
}

/** Hop-by-hop, caller-identity and proxy headers that must not be forwarded upstream. */
const DROP_REQUEST = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'http2-settings',
  'proxy-authorization',
  'authorization',
  'x-api-key',
  'x-goog-api-key',
  'cookie',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);
const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
  'trailer',
]);
/** Methods the providers' APIs use; anything else is refused before auth. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Where an upstream's base URL points, parsed once: each call only appends its path. */
interface UpstreamTarget {
  origin: string;
  basePath: string;
  host: string;
}
const targets = new WeakMap<Upstream, UpstreamTarget>();
function targetOf(upstream: Upstream): UpstreamTarget {
  let target = targets.get(upstream);
  if (!target) {
    const base = new URL(upstream.baseUrl);
    target = { origin: base.origin, basePath: base.pathname.replace(/\/+$/, ''), host: base.host };
    targets.set(upstream, target);
  }
  return target;
}

/** Whether the caller sent a body (a GET or HEAD with one is refused: it would never be read). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function fail(reply: FastifyReply, status: number, code: string, message: string) {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .send(errorBody(status, code, message));
}

/** What the gateway knows of a call once it is authorised, for the request's log line. */
export const gatewayLogFields = new WeakMap<FastifyRequest, { provider: string; workspace: string }>();

/**
 * The AI gateway: `/gateway/{provider}/...`. Every call resolves the workspace's *current*
 * config from storage, so a mode switch, a rotation or a cleared key (through the API or
 * Terraform, on any instance) applies to the very next call. Managed calls use the platform key
 * and spend a credit (given back when the upstream never answered); byok calls use the workspace's
 * stored key and spend none. Bodies stream through in both directions.
 */
export async function gatewayRoutes(app: FastifyInstance, opts: GatewayOptions) {
  const { storage, configs, upstreams } = opts;
  const timeouts = opts.timeouts ?? DEFAULT_UPSTREAM_TIMEOUTS;
  const dispatcher = new Agent({
    connect: { timeout: timeouts.connectMs },
    headersTimeout: timeouts.firstByteMs,
    bodyTimeout: timeouts.idleMs,
  });
  app.addHook('onClose', async () => {
    await dispatcher.close();
  });
  // The body is forwarded as it came: no parsing, no buffering of streams we do not need to read.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  /**
   * Who is calling, for which workspace, with that workspace's config as stored now: one read
   * per call, so a mode switch made anywhere applies to the very next call.
   */
  async function resolveCaller(
    request: FastifyRequest,
    upstream: Upstream,
    query: URLSearchParams,
    workspaceHint: string | undefined,
  ): Promise<GatewayCaller | undefined> {
    const presented = upstream.callerKey(request.headers, query);
    if (!presented) return undefined;
    // Gateway tokens have their own prefix; anything else can only be a workspace's byok key.
    if (presented.startsWith(`${GATEWAY_TOKEN_PREFIX}_`)) {
      const found = await storage.findGatewayTokenCaller(hashToken(presented));
      if (!found) return undefined;
      const expired = found.token.expiresAt !== null && Date.parse(found.token.expiresAt) <= Date.now();
      if (found.token.kind !== 'gateway' || expired) return undefined;
      if (workspaceHint !== undefined && workspaceHint !== found.caller.workspaceId) return undefined;
      return found.caller;
    }
    // A byok process presents the workspace's real key, known here by its fingerprint only. It is
    // accepted only while it is the workspace's current key, for this provider, in byok mode: a
    // rotated, cleared or replaced key (or a switch to managed) locks the old one out at once,
    // on every instance, because the config read here is the stored one.
    const fingerprint = configs.fingerprint(presented);
    const callers = (await storage.findKeyCallers(fingerprint)).filter(
      (c) =>
        c.config.mode === 'byok' &&
        c.config.provider === upstream.provider &&
        c.config.keyFingerprint === fingerprint,
    );
    // The same key may have been given to several workspaces; the base URL's workspace segment
    // says which one is calling.
    if (workspaceHint === undefined) return callers.length === 1 ? callers[0] : undefined;
    return callers.find((c) => c.workspaceId === workspaceHint);
  }

  app.all('/gateway/*', { schema: { hide: true }, bodyLimit: 10 * 1024 * 1024 }, async (request, reply) => {
    if (!METHODS.has(request.method)) {
      return fail(
        reply,
        405,
        'method_not_allowed',
        'the gateway forwards GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS',
      );
    }
    let target: ReturnType<typeof parseGatewayTarget>;
    try {
      target = parseGatewayTarget(request.raw.url ?? '');
    } catch (err) {
      if (!(err instanceof GatewayTargetError)) throw err;
      return fail(reply, 400, 'invalid_gateway_path', err.message);
    }
    const upstream = upstreams.get(target.provider);
    if (!upstream) return fail(reply, 404, 'unknown_provider', 'the gateway does not serve this provider');
    if ((request.method === 'GET' || request.method === 'HEAD') && hasBody(request)) {
      reply.header('connection', 'close');
      return fail(
        reply,
        400,
        'body_not_allowed',
        `a ${request.method} request to the gateway cannot carry a body`,
      );
    }
    refuseFailingAddress(request);
    const caller = await resolveCaller(request, upstream, target.query, target.workspace);
    if (!caller) {
      request.server.authFailures.fail(request.ip);
      return fail(
        reply,
        401,
        'unauthenticated',
        'unknown gateway credential: run the process with `rigbox exec`',
      );
    }
    const provider = upstream.provider;
    gatewayLogFields.set(request, { provider, workspace: caller.workspaceId });
    const owner = { kind: 'workspace' as const, id: caller.workspaceId };
    const { config } = caller;

    let key: string;
    let spent: { user: User; period: string } | undefined;
    if (config.mode === 'byok') {
      if (config.provider !== provider) {
        return fail(
          reply,
          409,
          'provider_mismatch',
          `the workspace's key is for ${config.provider}, not ${provider}`,
        );
      }
      const stored = configs.readKey(owner, config);
      if (stored.state === 'unreadable')
        throw await configs.reportUnreadable(owner, config, caller.user.id, request.log);
      if (stored.state !== 'set')
        return fail(reply, 409, 'no_api_key', 'the workspace is in byok mode but has no key set');
      key = stored.key;
    } else {
      if (!MANAGED_PROVIDER_IDS.includes(provider) || !upstream.platformKey) {
        return fail(reply, 409, 'provider_not_managed', `managed mode does not serve ${provider} here`);
      }
      const period = currentPeriod().start;
      const limit = PLAN_CREDITS[caller.user.plan] ?? PLAN_CREDITS.free;
      if (!(await storage.spendCredit(caller.user.id, period, limit))) {
        return fail(
          reply,
          402,
          'credits_exhausted',
          `no managed credits left this period (${limit} on the ${caller.user.plan} plan); upgrade the plan or switch the workspace to byok`,
        );
      }
      spent = { user: caller.user, period };
      key = upstream.platformKey;
    }

    const query = target.query;
    query.delete('key');
    const base = targetOf(upstream);
    const search = query.toString();
    const headers: Record<string, string> = {};
    // Headers the caller named in Connection are hop-by-hop too (RFC 9110 7.6.1).
    const named = String(request.headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase());
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || DROP_REQUEST.has(name) || named.includes(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    upstream.authorize(headers, key);
    const sendsBody = request.method !== 'GET' && request.method !== 'HEAD' && hasBody(request);
    if (!sendsBody) delete headers['content-length'];

    // The caller going away aborts the upstream call (and, before any answer, refunds the credit).
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.on('close', onClose);
    reply.hijack();
    let answered = false;
    try {
      await dispatcher.stream(
        {
          origin: base.origin,
          path: `${base.basePath}${target.path}${search ? `?${search}` : ''}`,
          method: request.method as 'GET',
          headers,
          body: sendsBody ? (request.body as NodeJS.ReadableStream as import('node:stream').Readable) : null,
          signal: abort.signal,
        },
        ({ statusCode, headers: answer }) => {
          answered = true;
          const out: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(answer)) {
            if (value !== undefined && !DROP_RESPONSE.has(name)) out[name] = value;
          }
          out['x-rigbox-ai-mode'] = config.mode;
          reply.raw.writeHead(statusCode, out);
          // Each chunk is written as it arrives (server-sent events must not wait for the end).
          return reply.raw;
        },
      );
    } catch (err) {
      if (!answered && spent) await storage.refundCredit(spent.user.id, spent.period);
      const code = (err as { code?: string }).code;
      if (abort.signal.aborted) {
        reply.raw.destroy();
        return;
      }
      request.log.warn(
        { provider, upstream: base.host, code },
        answered ? 'upstream answer cut' : 'upstream failed',
      );
      if (reply.raw.headersSent) {
        reply.raw.destroy();
        return;
      }
      const label = aiProvider(provider as AiProviderId).label;
      const timedOut =
        err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError;
      const [status, errorCode, message] = timedOut
        ? [504, 'upstream_timeout', `${label} did not answer in time`]
        : [502, 'upstream_unreachable', `cannot reach ${label}`];
      const payload = JSON.stringify(errorBody(status, errorCode, message));
      reply.raw.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        'cache-control': 'no-store',
      });
      reply.raw.end(payload);
    } finally {
      reply.raw.off('close', onClose);
    }
  });
}
