import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AiProvider, ErrorBody, Mode, Model } from '../ai-config/schemas.js';
import { type AiConfigs, actorOf } from '../ai-config/service.js';
import { authenticate } from '../auth/tokens.js';
import { ApiError } from '../errors.js';
import {
  ByokPolicyInput,
  configViolations,
  Enforcement,
  keyAgeDays,
  keyAgeViolation,
  ViolationView,
} from '../policy/rules.js';
import type { PolicyInForce } from '../policy/service.js';
import type { AiConfigRecord, Storage, User } from '../storage/types.js';
import { decodeCursor, encodeCursor, nextPage, pageBodyFields, pageQueryFields } from './paging.js';

/** The account's BYOK policy, its report and check, and the audit export. */

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  404: ErrorBody,
  412: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
};
const bodyErrors = { ...errors, 413: ErrorBody, 415: ErrorBody };
const security = [{ bearer: [] }];
const IfMatchHeaders = z.object({
  'if-match': z
    .string()
    .max(200)
    .optional()
    .describe('The ETag of the policy revision this change is based on; 412 if it moved.'),
});

const ModelsView = z.record(z.string(), z.array(z.string()));
export const ByokPolicyView = z
  .object({
    enforcement: Enforcement,
    allowed_modes: z.array(Mode).nullable(),
    allowed_providers: z.array(AiProvider).nullable(),
    allowed_models: ModelsView.nullable(),
    max_key_age_days: z.number().int().nullable(),
    revision: z
      .number()
      .int()
      .describe('0 until a policy is set; increments on every change; also the ETag.'),
    updated_at: z.string().nullable(),
  })
  .describe('The account BYOK policy; null rules allow everything.');

const ReportEntry = z.object({
  workspace_id: z.string().nullable().describe('The workspace, or null for the AI defaults.'),
  name: z.string().nullable(),
  mode: Mode,
  provider: AiProvider,
  model: z.string().nullable(),
  compliant: z.boolean(),
  violations: z.array(ViolationView),
  key_age_days: z
    .number()
    .int()
    .nullable()
    .describe('Days since the stored key was set or rotated; null without a key.'),
  key_past_max_age: z.boolean(),
});

const CheckInput = z.strictObject({
  mode: Mode,
  provider: AiProvider,
  model: Model.nullable().optional().describe('null or absent: the provider default.'),
  api_key_updated_at: z.iso
    .datetime({ offset: true })
    .nullable()
    .optional()
    .describe('When the key to use was set or rotated, to check its age; absent or null: no key age check.'),
});

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;
const ExportQuery = z.strictObject({
  since: z
    .string()
    .max(1024)
    .optional()
    .describe(
      'An RFC 3339 time (events at or after it) or the `Rigbox-Next-Cursor` of a previous export (events after it). Absent: from the first event.',
    ),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(1000)
    .describe('Events per answer, 1 to 10,000 (default 1,000).'),
});

function policyView(p: PolicyInForce) {
  return { ...p.policy, revision: p.revision, updated_at: p.updatedAt };
}

function reportEntry(
  p: PolicyInForce,
  workspace: { id: string; name: string } | null,
  config: AiConfigRecord,
  now: Date,
) {
  const violations = configViolations(p.policy, config);
  const age = keyAgeDays(config.keyUpdatedAt, config.key !== null, now);
  const aged = keyAgeViolation(p.policy, age);
  if (aged) violations.push(aged);
  return {
    workspace_id: workspace?.id ?? null,
    name: workspace?.name ?? null,
    mode: config.mode,
    provider: config.provider as z.infer<typeof AiProvider>,
    model: config.model,
    compliant: violations.length === 0,
    violations,
    key_age_days: age,
    key_past_max_age: aged !== null,
  };
}

export async function policyRoutes(app: FastifyInstance, opts: { storage: Storage; configs: AiConfigs }) {
  const { storage, configs } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();
  // Authenticated before anything else, as the other API routes are: a request without a token is
  // a 401 whatever its body or query.
  const users = new WeakMap<FastifyRequest, User>();
  app.addHook('onRequest', async (request) => {
    users.set(request, (await authenticate(storage, request, 'user')).user);
  });
  const userOf = async (request: FastifyRequest): Promise<User> => {
    const user = users.get(request);
    if (!user) throw new Error('route registered without authentication');
    return user;
  };

  r.get(
    '/api/users/me/byok-policy',
    {
      schema: {
        summary: "Read the account's BYOK policy",
        tags: ['policy'],
        security,
        response: { 200: ByokPolicyView, ...errors },
      },
    },
    async (request, reply) => {
      const p = await configs.policies.inForce((await userOf(request)).id);
      reply.header('etag', `"${p.revision}"`);
      return policyView(p);
    },
  );

  r.put(
    '/api/users/me/byok-policy',
    {
      schema: {
        summary: "Replace the account's BYOK policy",
        description:
          'Every config write (PUT ai-config, PUT ai-defaults, POST workspaces with or without ai_config) is checked against it: under `enforce` a violation is a 422 `policy_violation` naming the `rule` and the `field`; under `report` the write goes through and the violation is recorded in the audit trail. Existing configs are never rewritten: the report shows what falls outside. If-Match gives optimistic concurrency.',
        tags: ['policy'],
        security,
        headers: IfMatchHeaders,
        body: ByokPolicyInput,
        response: { 200: ByokPolicyView, ...bodyErrors },
      },
    },
    async (request, reply) => {
      const user = await userOf(request);
      const p = await configs.policies.put(actorOf(user), request.body, request.headers['if-match']);
      reply.header('etag', `"${p.revision}"`);
      return policyView(p);
    },
  );

  r.get(
    '/api/users/me/byok-policy/report',
    {
      schema: {
        summary: 'Which configs the BYOK policy in force allows, and how old their keys are',
        description:
          'The AI defaults (on the first page) and every workspace, oldest first, a page at a time: follow `next_cursor` (or the `Link` header) until it is null.',
        tags: ['policy'],
        security,
        querystring: z.strictObject(pageQueryFields),
        response: {
          200: z.object({
            policy: z.object({ enforcement: Enforcement, revision: z.number().int() }),
            generated_at: z.string(),
            defaults: ReportEntry.nullable().describe('The AI defaults; null on pages after the first.'),
            workspaces: z.array(ReportEntry),
            ...pageBodyFields,
          }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const user = await userOf(request);
      const { limit, cursor } = request.query;
      const scope = `byok-report:${user.id}`;
      const after = cursor === undefined ? undefined : decodeCursor(scope, cursor, 2);
      const [p, page, defaults] = await Promise.all([
        configs.policies.inForce(user.id),
        storage.listWorkspaceAiConfigs(user.id, { limit, after }),
        after ? undefined : configs.current({ kind: 'defaults', id: user.id }),
      ]);
      const now = new Date();
      return {
        policy: { enforcement: p.policy.enforcement, revision: p.revision },
        generated_at: now.toISOString(),
        defaults: defaults ? reportEntry(p, null, defaults, now) : null,
        workspaces: page.items.map(({ workspace, config }) => reportEntry(p, workspace, config, now)),
        next_cursor: nextPage(request, reply, scope, page.next),
      };
    },
  );

  r.post(
    '/api/users/me/byok-policy/check',
    {
      schema: {
        summary: 'Check a config against the BYOK policy in force, without writing anything',
        description:
          'What the Terraform provider asks at plan time, so that CI fails before apply. Answers the violations whatever the enforcement; the caller decides what `report` means to it.',
        tags: ['policy'],
        security,
        body: CheckInput,
        response: {
          200: z.object({
            enforcement: Enforcement,
            revision: z.number().int(),
            max_key_age_days: z
              .number()
              .int()
              .nullable()
              .describe("The policy's key age limit, for callers that check the ages of keys they know."),
            violations: z.array(ViolationView),
          }),
          ...bodyErrors,
        },
      },
    },
    async (request) => {
      const user = await userOf(request);
      const p = await configs.policies.inForce(user.id);
      const { mode, provider, model, api_key_updated_at: keyAt } = request.body;
      const violations = configViolations(p.policy, { mode, provider, model: model ?? null });
      const aged = keyAgeViolation(p.policy, keyAgeDays(keyAt ?? null, !!keyAt, new Date()));
      if (aged) violations.push(aged);
      return {
        enforcement: p.policy.enforcement,
        revision: p.revision,
        max_key_age_days: p.policy.max_key_age_days,
        violations,
      };
    },
  );

  r.get(
    '/api/users/me/audit/export',
    {
      schema: {
        summary: "Export the account's audit trail as NDJSON, with its hash chain",
        description:
          'One JSON event per line, oldest first, for SIEM pipelines. Each carries `seq`, `prev_hash` and `hash`: an HMAC chain under a server secret, so a deleted, reordered or edited event breaks it (`rigbox audit verify` checks it). The `Rigbox-Next-Cursor` header is where to continue (pass it as `since`); `Link: rel="next"` is sent while more events are waiting. No key material is in any event.',
        tags: ['audit'],
        security,
        querystring: ExportQuery,
        // Both: the events come as NDJSON, errors as JSON like everywhere else.
        produces: ['application/x-ndjson', 'application/json'],
        response: {
          200: z
            .string()
            .describe(
              'NDJSON: one event a line with seq, id, at, actor, actor_user_id, action, owner_kind, owner_id, changes, key_event, revision, prev_hash, hash.',
            ),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const user = await userOf(request);
      const { since, limit } = request.query;
      const scope = `audit-export:${user.id}`;
      let after: { account: string; seq: number } | undefined;
      let sinceTime: string | undefined;
      if (since !== undefined) {
        if (ISO_TIME.test(since) && !Number.isNaN(Date.parse(since))) {
          sinceTime = new Date(since).toISOString();
        } else {
          const [seq] = decodeCursor(scope, since, 1);
          if (!/^\d{1,15}$/.test(seq as string)) {
            throw new ApiError(
              400,
              'invalid_cursor',
              'since is neither an RFC 3339 time nor an export cursor',
              'since',
            );
          }
          after = { account: user.id, seq: Number(seq) };
        }
      }
      const events = await storage.auditChain({
        account: user.id,
        after,
        since: sinceTime,
        limit: limit + 1,
      });
      const more = events.length > limit;
      const page = more ? events.slice(0, limit) : events;
      const last = page[page.length - 1];
      const cursor = last ? encodeCursor(scope, [String(last.seq)]) : since && after ? since : undefined;
      if (cursor) reply.header('rigbox-next-cursor', cursor);
      if (more && cursor) {
        const url = new URL(request.url, 'http://rigbox.invalid');
        url.searchParams.set('since', cursor);
        reply.header('link', `<${url.pathname}${url.search}>; rel="next"`);
      }
      const lines = page.map((e) =>
        JSON.stringify({
          seq: e.seq,
          id: e.id,
          at: e.at,
          actor: e.actorName,
          actor_user_id: e.actorUserId,
          action: e.action,
          owner_kind: e.ownerKind,
          owner_id: e.ownerId,
          changes: e.changes,
          key_event: e.keyEvent,
          revision: e.revision,
          prev_hash: e.prevHash,
          hash: e.hash,
        }),
      );
      return reply
        .type('application/x-ndjson; charset=utf-8')
        .send(Buffer.from(lines.length ? `${lines.join('\n')}\n` : '') as never);
    },
  );
}
