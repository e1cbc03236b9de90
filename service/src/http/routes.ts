import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  AiConfigInput,
  AiConfigView,
  AuditEventView,
  CreateWorkspaceInput,
  ErrorBody,
  WorkspaceView,
} from '../ai-config/schemas.js';
import { type AiConfigs, actorOf, etagOf } from '../ai-config/service.js';
import { authenticate } from '../auth/tokens.js';
import type { AiConfigRecord, ConfigOwner, Storage, User, Workspace } from '../storage/types.js';
import { decodeCursor, nextPage, pageBodyFields, pageQueryFields } from './paging.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: User | null;
  }
}

const WorkspaceParams = z.strictObject({ id: z.string().min(1).max(64) });
export const MAX_LIST_IDS = 100;
const ListQuery = z.strictObject({
  ids: z
    .string()
    .regex(
      new RegExp(`^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64}){0,${MAX_LIST_IDS - 1}}$`),
      `comma-separated workspace ids, at most ${MAX_LIST_IDS}`,
    )
    .optional()
    .describe(`Comma-separated workspace ids (at most ${MAX_LIST_IDS}): list only these.`),
  ...pageQueryFields,
});
const AuditQuery = z.strictObject(pageQueryFields);
const IfMatchHeaders = z.object({
  'if-match': z
    .string()
    .max(200)
    .optional()
    .describe('The ETag of the revision this change is based on; 412 if it moved.'),
});
const errors = {
  400: ErrorBody,
  401: ErrorBody,
  404: ErrorBody,
  412: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
};
/** Routes that read a body: too large (413) or not JSON (415). */
const bodyErrors = { ...errors, 413: ErrorBody, 415: ErrorBody };
const security = [{ bearer: [] }];

function workspaceView(configs: AiConfigs, ws: Workspace, config: AiConfigRecord) {
  return {
    id: ws.id,
    name: ws.name,
    created_at: ws.createdAt,
    ai_config: configs.view({ kind: 'workspace', id: ws.id }, config),
  };
}

function sendConfig(configs: AiConfigs, reply: FastifyReply, owner: ConfigOwner, config: AiConfigRecord) {
  reply.header('etag', etagOf(config.revision));
  return configs.view(owner, config);
}

const userOf = (request: FastifyRequest): User => {
  if (!request.user) throw new Error('route registered without authentication');
  return request.user;
};

/** The AI-config API: workspaces, their AI configs, the account's defaults and the audit trail. */
export async function aiConfigRoutes(app: FastifyInstance, opts: { storage: Storage; configs: AiConfigs }) {
  const { storage, configs } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();
  app.decorateRequest('user', null);
  app.addHook('onRequest', async (request) => {
    request.user = (await authenticate(storage, request, 'user')).user;
  });

  r.post(
    '/api/workspaces',
    {
      schema: {
        summary: 'Create a workspace',
        description:
          "Without ai_config the workspace starts from a snapshot of the caller's AI defaults (key included).",
        tags: ['workspaces'],
        security,
        body: CreateWorkspaceInput,
        response: { 201: WorkspaceView, ...bodyErrors },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const { workspace, config } = await configs.createWorkspace(
        actorOf(user),
        request.body.name,
        request.body.ai_config,
      );
      reply.code(201).header('location', `/api/workspaces/${workspace.id}`);
      return workspaceView(configs, workspace, config);
    },
  );

  r.get(
    '/api/workspaces',
    {
      schema: {
        summary: "List the caller's workspaces",
        description:
          "Oldest first, a page at a time: follow `next_cursor` (or the `Link` header) until it is null. With `ids`, only those workspaces (ids that are not the caller's are left out), paged the same way: how the Terraform provider refreshes many configs in one request.",
        tags: ['workspaces'],
        security,
        querystring: ListQuery,
        response: { 200: z.object({ workspaces: z.array(WorkspaceView), ...pageBodyFields }), ...errors },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const { ids, limit, cursor } = request.query;
      // A cursor of this user's workspace list: the same order and keys with or without `ids`.
      const scope = `workspaces:${user.id}`;
      const page = { limit, after: cursor === undefined ? undefined : decodeCursor(scope, cursor, 2) };
      const found = ids
        ? await storage.findWorkspaceAiConfigs(user.id, ids.split(','), page)
        : await storage.listWorkspaceAiConfigs(user.id, page);
      return {
        workspaces: found.items.map(({ workspace, config }) => workspaceView(configs, workspace, config)),
        next_cursor: nextPage(request, reply, scope, found.next),
      };
    },
  );

  r.get(
    '/api/workspaces/:id',
    {
      schema: {
        summary: 'Read a workspace',
        tags: ['workspaces'],
        security,
        params: WorkspaceParams,
        response: { 200: WorkspaceView, ...errors },
      },
    },
    async (request) => {
      const { workspace, config } = await configs.workspaceConfig(userOf(request), request.params.id);
      return workspaceView(configs, workspace, config);
    },
  );

  r.delete(
    '/api/workspaces/:id',
    {
      schema: {
        summary: 'Delete a workspace and its AI config (the audit trail is kept)',
        tags: ['workspaces'],
        security,
        params: WorkspaceParams,
        // No content: z.undefined() is what the OpenAPI document shows as a response without a body.
        response: { 204: z.undefined().describe('Deleted'), ...bodyErrors },
      },
    },
    async (request, reply) => {
      await configs.deleteWorkspace(actorOf(userOf(request)), request.params.id);
      return reply.code(204).send();
    },
  );

  r.get(
    '/api/workspaces/:id/ai-config',
    {
      schema: {
        summary: "Read a workspace's AI config (never the key)",
        tags: ['ai-config'],
        security,
        params: WorkspaceParams,
        response: { 200: AiConfigView, ...errors },
      },
    },
    async (request, reply) => {
      const { workspace, config } = await configs.workspaceConfig(userOf(request), request.params.id);
      return sendConfig(configs, reply, { kind: 'workspace', id: workspace.id }, config);
    },
  );

  r.put(
    '/api/workspaces/:id/ai-config',
    {
      schema: {
        summary: "Set a workspace's AI config",
        description:
          'byok with api_key stores it; api_key null clears it; api_key absent keeps it (a provider change then needs a key). managed clears any key. Idempotent; If-Match gives optimistic concurrency.',
        tags: ['ai-config'],
        security,
        params: WorkspaceParams,
        headers: IfMatchHeaders,
        body: AiConfigInput,
        response: { 200: AiConfigView, ...bodyErrors },
      },
      config: { secretBody: true },
    },
    async (request, reply) => {
      const user = userOf(request);
      const { workspace, config: read } = await configs.workspaceConfig(user, request.params.id);
      const owner: ConfigOwner = { kind: 'workspace', id: workspace.id };
      const { config } = await configs.put(
        actorOf(user),
        owner,
        request.body,
        request.headers['if-match'],
        read,
      );
      return sendConfig(configs, reply, owner, config);
    },
  );

  r.get(
    '/api/users/me/ai-defaults',
    {
      schema: {
        summary: "Read the caller's AI defaults for new workspaces",
        tags: ['ai-config'],
        security,
        response: { 200: AiConfigView, ...errors },
      },
    },
    async (request, reply) => {
      const owner: ConfigOwner = { kind: 'defaults', id: userOf(request).id };
      return sendConfig(configs, reply, owner, await configs.current(owner));
    },
  );

  r.put(
    '/api/users/me/ai-defaults',
    {
      schema: {
        summary: "Set the caller's AI defaults for new workspaces",
        tags: ['ai-config'],
        security,
        headers: IfMatchHeaders,
        body: AiConfigInput,
        response: { 200: AiConfigView, ...bodyErrors },
      },
      config: { secretBody: true },
    },
    async (request, reply) => {
      const user = userOf(request);
      const owner: ConfigOwner = { kind: 'defaults', id: user.id };
      const { config } = await configs.put(actorOf(user), owner, request.body, request.headers['if-match']);
      return sendConfig(configs, reply, owner, config);
    },
  );

  r.get(
    '/api/workspaces/:id/audit',
    {
      schema: {
        summary: "A workspace's audit trail, newest first",
        description:
          'Key events are `set`, `rotated` or `cleared`; no key material ever appears. A page at a time: follow `next_cursor` (or the `Link` header) until it is null.',
        tags: ['audit'],
        security,
        params: WorkspaceParams,
        querystring: AuditQuery,
        response: { 200: z.object({ events: z.array(AuditEventView), ...pageBodyFields }), ...errors },
      },
    },
    async (request, reply) => {
      const ws = await configs.workspace(userOf(request), request.params.id);
      const owner: ConfigOwner = { kind: 'workspace', id: ws.id };
      const { limit, cursor } = request.query;
      const scope = `audit:workspace:${ws.id}`;
      const page = { limit, after: cursor === undefined ? undefined : decodeCursor(scope, cursor, 1) };
      const events = await storage.listAudit(owner, page);
      return {
        next_cursor: nextPage(request, reply, scope, events.next),
        events: events.items.map((e) => ({
          id: e.id,
          at: e.at,
          actor: e.actorName,
          action: e.action,
          changes: e.changes,
          key_event: e.keyEvent,
          revision: e.revision,
        })),
      };
    },
  );
}
