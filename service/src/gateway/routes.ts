import { type Readable, Transform } from 'node:stream';
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
import {
  COMMON_FORWARD_HEADERS,
  DEFAULT_UPSTREAM_TIMEOUTS,
  FORWARD_HEADER_PREFIXES,
  type Upstream,
  type UpstreamTimeouts,
} from './upstreams.js';

export interface GatewayOptions {
  storage: Storage;
  configs: AiConfigs;
  upstreams: Map<string, Upstream>;
  timeouts?: UpstreamTimeouts;
}

const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
  'trailer',
]);
/** The largest body the gateway forwards (a request with images or long context fits). */
export const GATEWAY_BODY_LIMIT = 10 * 1024 * 1024;

/** A body that grew past GATEWAY_BODY_LIMIT while it streamed through. */
class BodyTooLarge extends Error {}

/** Counts a streamed body and fails it past the limit (a chunked body declares no length). */
function limited(body: Readable): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > GATEWAY_BODY_LIMIT) done(new BodyTooLarge());
      else done(null, chunk);
    },
  });
  body.on('error', (err) => counter.destroy(err));
  return body.pipe(counter);
}

/**
 * The caller's headers that go upstream: an allowlist (the common ones, the provider's SDK
 * headers, and its account headers only with the workspace's own key). A denylist let through
 * whatever a proxy or a path-scoped upstream might act on (x-original-url, method overrides, ...).
 */
function forwardedHeaders(
  request: FastifyRequest,
  upstream: Upstream,
  withAccount: boolean,
  sendsBody: boolean,
) {
  const headers: Record<string, string> = {};
  // Headers the caller named in Connection are hop-by-hop (RFC 9110 7.6.1), whatever their name.
  const named = String(request.headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase());
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || named.includes(name)) continue;
    const allowed =
      COMMON_FORWARD_HEADERS.has(name) ||
      upstream.forwardHeaders.includes(name) ||
      (withAccount && upstream.accountHeaders.includes(name)) ||
      FORWARD_HEADER_PREFIXES.some((p) => name.startsWith(p));
    if (allowed) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (!sendsBody) delete headers['content-length'];
  return headers;
}

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
  ): Promise<{ caller?: GatewayCaller; presented: boolean; stale?: boolean }> {
    const presented = upstream.callerKey(request.headers, query);
    if (!presented) return { presented: false };
    // Gateway tokens have their own prefix; anything else can only be a workspace's byok key.
    if (presented.startsWith(`${GATEWAY_TOKEN_PREFIX}_`)) {
      const found = await storage.findGatewayTokenCaller(hashToken(presented));
      if (!found) return { presented: true };
      const expired = found.token.expiresAt !== null && Date.parse(found.token.expiresAt) <= Date.now();
      if (found.token.kind !== 'gateway' || expired) return { presented: true };
      if (workspaceHint !== undefined && workspaceHint !== found.caller.workspaceId)
        return { presented: true };
      return { caller: found.caller, presented: true };
    }
    // A byok process presents the workspace's real key, known here by its fingerprint only. It is
    // accepted only while it is the workspace's current key, for this provider, in byok mode: a
    // rotated, cleared or replaced key (or a switch to managed) locks the old one out at once,
    // on every instance, because the config read here is the stored one.
    const fingerprint = configs.fingerprint(presented);
    const given = (await storage.findKeyCallers(fingerprint)).filter(
      (c) => workspaceHint === undefined || c.workspaceId === workspaceHint,
    );
    const current = given.filter(
      (c) =>
        c.config.mode === 'byok' &&
        c.config.provider === upstream.provider &&
        c.config.keyFingerprint === fingerprint,
    );
    // The same key may have been given to several workspaces; the base URL's workspace segment
    // says which one is calling.
    if (current.length === 1) return { caller: current[0], presented: true };
    // A key this workspace's runtime was given, no longer its current one: a process still running
    // after a rotation, not a guess (the caller holds the key already, so saying so leaks nothing).
    return { presented: true, stale: current.length === 0 && given.length > 0 };
  }

  app.all('/gateway/*', { schema: { hide: true }, bodyLimit: GATEWAY_BODY_LIMIT }, async (request, reply) => {
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
    if (Number(request.headers['content-length'] ?? 0) > GATEWAY_BODY_LIMIT) {
      reply.header('connection', 'close');
      return fail(
        reply,
        413,
        'body_too_large',
        'the request body is larger than the gateway forwards (10 MiB)',
      );
    }
    refuseFailingAddress(request);
    const resolved = await resolveCaller(request, upstream, target.query, target.workspace);
    const caller = resolved.caller;
    if (!caller) {
      if (resolved.stale) {
        return fail(
          reply,
          401,
          'api_key_not_current',
          "this key is no longer the workspace's key (rotated, cleared, or the workspace switched to managed): start the process again with `rigbox exec`",
        );
      }
      // Only a credential that was presented and failed counts as a guess (a preflight has none).
      if (resolved.presented) request.server.authFailures.fail(request.ip);
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
      if (!upstream.managedEndpoints.some((e) => e.method === request.method && e.path.test(target.path))) {
        return fail(
          reply,
          403,
          'endpoint_not_managed',
          'managed mode serves inference endpoints only (completions, messages, embeddings, models); use byok for the rest of the API',
        );
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
    const sendsBody = request.method !== 'GET' && request.method !== 'HEAD' && hasBody(request);
    const headers = forwardedHeaders(request, upstream, config.mode === 'byok', sendsBody);
    upstream.authorize(headers, key);

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
          body: sendsBody ? limited(request.body as Readable) : null,
          signal: abort.signal,
        },
        ({ statusCode, headers: answer }) => {
          answered = true;
          const out: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(answer)) {
            if (value === undefined || DROP_RESPONSE.has(name)) continue;
            // The platform's account at the provider is no business of a managed workspace.
            if (config.mode === 'managed' && upstream.accountHeaders.includes(name)) continue;
            out[name] = value;
          }
          out['x-rigbox-ai-mode'] = config.mode;
          out['x-content-type-options'] = 'nosniff';
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
      if (err instanceof BodyTooLarge || (err as { cause?: unknown }).cause instanceof BodyTooLarge) {
        const payload = JSON.stringify(
          errorBody(413, 'body_too_large', 'the request body is larger than the gateway forwards (10 MiB)'),
        );
        reply.raw.writeHead(413, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          connection: 'close',
        });
        reply.raw.end(payload);
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
