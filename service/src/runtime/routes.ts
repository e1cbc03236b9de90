import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody } from '../ai-config/schemas.js';
import type { AiConfigs } from '../ai-config/service.js';
import { authenticate, bearerToken, RUNTIME_TOKEN_USED_MESSAGE } from '../auth/tokens.js';
import { ApiError } from '../errors.js';
import { creditsView } from '../gateway/credits.js';
import type { Upstream } from '../gateway/upstreams.js';
import { hashToken, newId, newToken } from '../ids.js';
import type { Storage } from '../storage/types.js';
import { runtimeEnv } from './env.js';

export const RUNTIME_TOKEN_PREFIX = 'rbxr';
export const GATEWAY_TOKEN_PREFIX = 'rbxg';

/** A runtime token fetches the env once, as the process starts: it is single-use and short-lived. */
export const RUNTIME_TOKEN_TTL_MS = 5 * 60_000;
/** A gateway token lives as long as a workspace process might (then `rigbox exec` again). */
export const GATEWAY_TOKEN_TTL_MS = 24 * 3600_000;

export interface RuntimeOptions {
  storage: Storage;
  configs: AiConfigs;
  upstreams: Map<string, Upstream>;
  publicUrl: string | undefined;
}

const RuntimeTokenView = z.object({ token: z.string(), workspace_id: z.string(), expires_at: z.string() });
const RuntimeEnvView = z.object({
  workspace_id: z.string(),
  mode: z.enum(['managed', 'byok']),
  provider: z.string(),
  env: z.record(z.string(), z.string()),
});
const CreditsView = z.object({
  plan: z.enum(['free', 'pro']),
  limit: z.number().int(),
  used: z.number().int(),
  balance: z.number().int(),
  period_start: z.string(),
  period_end: z.string(),
});

/** Every route: bad input (400), no or wrong token (401), rate limited (429). */
const errors = { 400: ErrorBody, 401: ErrorBody, 429: ErrorBody };
/** A POST may carry a body, which Fastify parses: too large (413) or not JSON (415). */
const bodyErrors = { ...errors, 413: ErrorBody, 415: ErrorBody };

/** Runtime injection: runtime tokens, the workspace env, and the credits view. */
export async function runtimeRoutes(app: FastifyInstance, opts: RuntimeOptions) {
  const { storage, configs } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    '/api/workspaces/:id/runtime-tokens',
    {
      schema: {
        summary: "Create a short-lived runtime token for a workspace's process",
        tags: ['runtime'],
        security: [{ bearer: [] }],
        params: z.strictObject({ id: z.string().min(1).max(64) }),
        response: { 201: RuntimeTokenView, ...bodyErrors, 404: ErrorBody },
      },
    },
    async (request, reply) => {
      const { user } = await authenticate(storage, request, 'user');
      const ws = await configs.workspace(user, request.params.id);
      const token = newToken(RUNTIME_TOKEN_PREFIX);
      const now = Date.now();
      const expiresAt = new Date(now + RUNTIME_TOKEN_TTL_MS).toISOString();
      await storage.insertToken({
        id: newId('tok'),
        userId: user.id,
        tokenHash: hashToken(token),
        kind: 'runtime',
        workspaceId: ws.id,
        expiresAt,
        createdAt: new Date(now).toISOString(),
      });
      return reply.code(201).send({ token, workspace_id: ws.id, expires_at: expiresAt });
    },
  );

  r.get(
    '/api/runtime/env',
    {
      schema: {
        summary: "The env for a workspace's process (runtime token)",
        description:
          "byok: the workspace's key under its SDK's standard variable; managed: a gateway token and base URLs. Every SDK is pointed at the gateway so a mode switch applies on the next call.",
        tags: ['runtime'],
        security: [{ bearer: [] }],
        response: { 200: RuntimeEnvView, ...errors, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request) => {
      const { token } = await authenticate(storage, request, 'runtime');
      const workspaceId = token.workspaceId;
      if (!workspaceId) throw new ApiError(401, 'unauthenticated', 'invalid or expired token');
      const owner = { kind: 'workspace' as const, id: workspaceId };
      const config = await configs.current(owner);
      const stored = configs.readKey(owner, config);
      if (stored.state === 'unreadable') {
        throw await configs.reportUnreadable(owner, config, token.userId, request.log);
      }
      if (config.mode === 'byok' && stored.state !== 'set') {
        throw new ApiError(
          409,
          'no_api_key',
          'the workspace is in byok mode but has no key: set one with PUT /api/workspaces/{id}/ai-config (or switch to managed)',
        );
      }
      // Single use: the env (with the key in it) is handed out once per runtime token, whichever
      // instance is asked first; a replayed token gets nothing.
      if (!(await storage.consumeRuntimeToken(hashToken(bearerToken(request) ?? '')))) {
        throw new ApiError(401, 'runtime_token_used', RUNTIME_TOKEN_USED_MESSAGE);
      }
      const apiKey = stored.state === 'set' ? stored.key : undefined;
      const gatewayToken = newToken(GATEWAY_TOKEN_PREFIX);
      const now = Date.now();
      await storage.insertToken({
        id: newId('tok'),
        userId: token.userId,
        tokenHash: hashToken(gatewayToken),
        kind: 'gateway',
        workspaceId,
        expiresAt: new Date(now + GATEWAY_TOKEN_TTL_MS).toISOString(),
        createdAt: new Date(now).toISOString(),
      });
      if (apiKey && config.keyFingerprint) {
        // The process may present this key to the gateway; it is accepted there only while it is
        // still the workspace's current key.
        await storage.bindRuntimeKey(config.keyFingerprint, workspaceId, new Date(now).toISOString());
      }
      const publicUrl = opts.publicUrl ?? `${request.protocol}://${request.host}`;
      return {
        workspace_id: workspaceId,
        mode: config.mode,
        provider: config.provider,
        env: runtimeEnv({ workspaceId, config, apiKey, gatewayToken, publicUrl, upstreams: opts.upstreams }),
      };
    },
  );

  r.get(
    '/api/users/me/credits',
    {
      schema: {
        summary: "The caller's managed-mode credits for the current period",
        tags: ['credits'],
        security: [{ bearer: [] }],
        response: { 200: CreditsView, ...errors },
      },
    },
    async (request) => {
      const { user } = await authenticate(storage, request, 'user');
      return creditsView(storage, user);
    },
  );
}
