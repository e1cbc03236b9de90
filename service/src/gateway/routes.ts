import http from 'node:http';
import https from 'node:https';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type AiProviderId, aiProvider, MANAGED_PROVIDER_IDS } from '../ai-config/providers.js';
import type { AiConfigs } from '../ai-config/service.js';
import { errorBody } from '../http/errors.js';
import { hashToken } from '../ids.js';
import { GATEWAY_TOKEN_PREFIX } from '../runtime/routes.js';
import type { GatewayCaller, Storage, User } from '../storage/types.js';
import { currentPeriod, PLAN_CREDITS } from './credits.js';
import type { Upstream } from './upstreams.js';

export interface GatewayOptions {
  storage: Storage;
  configs: AiConfigs;
  upstreams: Map<string, Upstream>;
}

/** Hop-by-hop and caller-identity headers that must not be forwarded either way. */
const DROP_REQUEST = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'upgrade',
  'proxy-authorization',
  'authorization',
  'x-api-key',
  'x-goog-api-key',
]);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'set-cookie']);

const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/** Where an upstream's base URL points, parsed once: each call only appends its path. */
interface UpstreamTarget {
  client: typeof http | typeof https;
  agent: http.Agent;
  hostname: string;
  port: string;
  basePath: string;
  host: string;
}
const targets = new WeakMap<Upstream, UpstreamTarget>();
function targetOf(upstream: Upstream): UpstreamTarget {
  let target = targets.get(upstream);
  if (!target) {
    const base = new URL(upstream.baseUrl);
    const https_ = base.protocol === 'https:';
    target = {
      client: https_ ? https : http,
      agent: https_ ? agents['https:'] : agents['http:'],
      // An IPv6 literal comes bracketed in a URL and bare in request options.
      hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: base.port,
      basePath: base.pathname.replace(/\/+$/, ''),
      host: base.host,
    };
    targets.set(upstream, target);
  }
  return target;
}

function fail(reply: FastifyReply, status: number, code: string, message: string) {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .send(errorBody(status, code, message));
}

/**
 * The AI gateway: `/gateway/{provider}/...`. Every call resolves the workspace's *current*
 * config from storage, so a mode switch (through the API or Terraform, on any instance) applies
 * to the very next call. Managed calls use the platform key and spend a credit; byok calls use
 * the workspace's stored key and spend none. Bodies stream through in both directions.
 */
export async function gatewayRoutes(app: FastifyInstance, opts: GatewayOptions) {
  const { storage, configs, upstreams } = opts;
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
    // A byok process presents the workspace's real key, known here by its fingerprint only. The
    // same key may have been given to several workspaces; the base URL's workspace segment says
    // which one is calling, and must be one the key was given to.
    const callers = await storage.findKeyCallers(configs.fingerprint(presented));
    if (workspaceHint === undefined) return callers.length === 1 ? callers[0] : undefined;
    return callers.find((c) => c.workspaceId === workspaceHint);
  }

  app.all(
    '/gateway/:provider/*',
    { schema: { hide: true }, bodyLimit: 10 * 1024 * 1024 },
    async (request, reply) => {
      const { provider } = request.params as { provider: string };
      const upstream = upstreams.get(provider);
      if (!upstream) return fail(reply, 404, 'unknown_provider', `the gateway does not serve "${provider}"`);
      const url = new URL(request.url, 'http://gateway.invalid');
      let rest = url.pathname.slice(`/gateway/${provider}`.length) || '/';
      // Workspace processes get base URLs with a workspace segment: /gateway/{provider}/w/{id}/...
      const segment = /^\/w\/([A-Za-z0-9_-]{1,64})(\/.*)?$/.exec(rest);
      const workspaceHint = segment?.[1];
      if (segment) rest = segment[2] ?? '/';
      const query = url.searchParams;
      const caller = await resolveCaller(request, upstream, query, workspaceHint);
      if (!caller)
        return fail(
          reply,
          401,
          'unauthenticated',
          'unknown gateway credential: run the process with `rigbox exec`',
        );
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
        const stored = configs.openKey(owner, config);
        if (!stored)
          return fail(reply, 409, 'no_api_key', 'the workspace is in byok mode but has no key set');
        key = stored;
      } else {
        if (!MANAGED_PROVIDER_IDS.includes(provider as AiProviderId) || !upstream.platformKey) {
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

      query.delete('key');
      const target = targetOf(upstream);
      const search = query.toString();
      // The body goes through unchanged, so a content-length the caller sent still holds (and
      // spares both sides chunked encoding); without one the body is sent chunked.
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (value === undefined || DROP_REQUEST.has(name)) continue;
        headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      upstream.authorize(headers, key);

      return new Promise<void>((resolve) => {
        const upstreamRequest = target.client.request(
          {
            hostname: target.hostname,
            port: target.port,
            path: `${target.basePath}${rest}${search ? `?${search}` : ''}`,
            method: request.method,
            headers,
            agent: target.agent,
          },
          (res) => {
            const out: Record<string, string | string[]> = {};
            for (const [name, value] of Object.entries(res.headers)) {
              if (value !== undefined && !DROP_RESPONSE.has(name)) out[name] = value;
            }
            reply.raw.writeHead(res.statusCode ?? 502, { ...out, 'x-rigbox-ai-mode': config.mode });
            // Flush each chunk as it arrives (server-sent events must not wait for the end).
            res.pipe(reply.raw);
            res.on('end', resolve);
            res.on('error', () => {
              reply.raw.destroy();
              resolve();
            });
          },
        );
        upstreamRequest.on('error', (err) => {
          request.log.warn(
            { provider, upstream: target.host, code: (err as NodeJS.ErrnoException).code },
            'upstream unreachable',
          );
          if (spent) void storage.refundCredit(spent.user.id, spent.period);
          if (!reply.raw.headersSent) {
            reply.raw.writeHead(502, { 'content-type': 'application/json', 'cache-control': 'no-store' });
            reply.raw.end(
              JSON.stringify(
                errorBody(
                  502,
                  'upstream_unreachable',
                  `cannot reach ${aiProvider(provider as AiProviderId).label}`,
                ),
              ),
            );
          } else {
            reply.raw.destroy();
          }
          resolve();
        });
        const body = request.body as NodeJS.ReadableStream | undefined;
        if (body && typeof body.pipe === 'function') body.pipe(upstreamRequest);
        else upstreamRequest.end();
        reply.hijack();
      });
    },
  );
}
