import type {
  AiConfigRecord,
  AiMode,
  AuditEvent,
  ConfigOwnerKind,
  GatewayCaller,
  KeyEvent,
  Plan,
  TokenKind,
  TokenRecord,
  User,
  Workspace,
} from './types.js';

/** Row <-> record mapping shared by the SQLite and PostgreSQL backends (same column names). */
type Row = Record<string, unknown>;

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

export const toUser = (r: Row): User => ({
  id: String(r.id),
  name: String(r.name),
  plan: String(r.plan) as Plan,
  createdAt: String(r.created_at),
});

export const toToken = (r: Row): TokenRecord => ({
  id: String(r.id),
  userId: String(r.user_id),
  tokenHash: String(r.token_hash),
  kind: String(r.kind) as TokenKind,
  workspaceId: str(r.workspace_id),
  expiresAt: str(r.expires_at),
  createdAt: String(r.created_at),
});

export const toWorkspace = (r: Row): Workspace => ({
  id: String(r.id),
  userId: String(r.user_id),
  name: String(r.name),
  createdAt: String(r.created_at),
});

/** The columns of workspaces and ai_configs do not overlap, so one joined row holds both. */
export const WORKSPACE_AI_CONFIG_SELECT = `SELECT w.*, c.* FROM workspaces w
  JOIN ai_configs c ON c.owner_kind = 'workspace' AND c.owner_id = w.id`;

/**
 * Joined reads shared by both backends (each adds its WHERE with its own placeholders). The owner's
 * columns are prefixed u_: their own names clash with the token's.
 */
const OWNER_COLUMNS = 'u.name AS u_name, u.plan AS u_plan, u.created_at AS u_created_at';
/** A token with its user. */
export const TOKEN_SELECT = `SELECT t.*, ${OWNER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id`;
/** The gateway's caller, workspace and current config in one statement. */
export const GATEWAY_TOKEN_CALLER_SELECT = `SELECT t.*, ${OWNER_COLUMNS}, c.* FROM api_tokens t
  JOIN users u ON u.id = t.user_id
  JOIN ai_configs c ON c.owner_kind = 'workspace' AND c.owner_id = t.workspace_id`;
export const KEY_CALLERS_SELECT = `SELECT b.workspace_id, w.user_id, ${OWNER_COLUMNS}, c.*
  FROM runtime_key_bindings b
  JOIN workspaces w ON w.id = b.workspace_id
  JOIN users u ON u.id = w.user_id
  JOIN ai_configs c ON c.owner_kind = 'workspace' AND c.owner_id = b.workspace_id`;

/** The owner's columns of a joined row, prefixed u_ (their own names clash with the token's). */
export const toOwner = (r: Row): User =>
  toUser({ id: r.user_id, name: r.u_name, plan: r.u_plan, created_at: r.u_created_at });

export const toGatewayCaller = (r: Row): GatewayCaller => ({
  user: toOwner(r),
  workspaceId: String(r.workspace_id),
  config: toAiConfig(r),
});

export const toAiConfig = (r: Row): AiConfigRecord => ({
  mode: String(r.mode) as AiMode,
  provider: String(r.provider),
  model: str(r.model),
  key:
    r.key_ciphertext == null
      ? null
      : {
          ciphertext: String(r.key_ciphertext),
          wrappedDek: String(r.key_wrapped_dek),
          kekId: String(r.key_kek_id),
        },
  keyFingerprint: str(r.key_fingerprint),
  keyUpdatedAt: str(r.key_updated_at),
  revision: Number(r.revision),
  updatedAt: String(r.updated_at),
});

export const aiConfigParams = (c: AiConfigRecord) => [
  c.mode,
  c.provider,
  c.model,
  c.key?.ciphertext ?? null,
  c.key?.wrappedDek ?? null,
  c.key?.kekId ?? null,
  c.keyFingerprint,
  c.keyUpdatedAt,
  c.revision,
  c.updatedAt,
];

export const toAuditEvent = (r: Row): AuditEvent => ({
  id: String(r.id),
  ownerKind: String(r.owner_kind) as ConfigOwnerKind,
  ownerId: String(r.owner_id),
  actorUserId: String(r.actor_user_id),
  actorName: String(r.actor_name),
  action: String(r.action),
  changes: JSON.parse(String(r.changes)) as AuditEvent['changes'],
  keyEvent: str(r.key_event) as KeyEvent | null,
  revision: r.revision == null ? null : Number(r.revision),
  at: String(r.at),
});

export const auditParams = (e: AuditEvent) => [
  e.id,
  e.ownerKind,
  e.ownerId,
  e.actorUserId,
  e.actorName,
  e.action,
  JSON.stringify(e.changes),
  e.keyEvent,
  e.revision,
  e.at,
];
