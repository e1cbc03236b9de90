import type { ChainedAuditEvent, ChainHead } from '../audit/chain.js';
import type {
  AiConfigRecord,
  AiMode,
  AuditEvent,
  AuditOwnerKind,
  ByokPolicyRecord,
  ChainPosition,
  GatewayCaller,
  KeyEvent,
  Page,
  PageRequest,
  Plan,
  TokenKind,
  TokenRecord,
  User,
  Workspace,
  WorkspaceAiConfig,
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

/** The audit_events columns with the chain's, in the order of `chainedAuditParams`. */
export const CHAINED_AUDIT_COLUMNS =
  'id, owner_kind, owner_id, actor_user_id, actor_name, action, changes, key_event, revision, at, chain_account, chain_seq, prev_hash, hash';

/** The ai_configs columns after the owner's, in the order of `aiConfigParams`. */
export const CONFIG_COLUMNS = `mode, provider, model, key_ciphertext, key_wrapped_dek, key_kek_id,
  key_fingerprint, key_updated_at, revision, updated_at`;

/**
 * The statements on the paths whose cost must not grow with the account: reads by key, pages, and
 * the lookups of the runtime and the gateway. Written once with `?` placeholders for both backends
 * (PostgreSQL numbers them); storage/plans.test.ts pins their query plans on both, so a change that
 * turns one into a scan or a sort fails there.
 *
 * Sort keys are compared without COLLATE: ids and timestamps are ASCII in fixed formats, which every
 * collation orders as bytes do, and a COLLATE other than the index's would keep PostgreSQL from
 * reading a page's order off the index.
 */
export const KEYED_STATEMENTS = {
  workspaceById: 'SELECT * FROM workspaces WHERE id = ? AND user_id = ?',
  workspaceAiConfigById: `${WORKSPACE_AI_CONFIG_SELECT} WHERE w.id = ? AND w.user_id = ?`,
  workspacePageFirst: `${WORKSPACE_AI_CONFIG_SELECT} WHERE w.user_id = ?
    ORDER BY w.created_at, w.id LIMIT ?`,
  workspacePageAfter: `${WORKSPACE_AI_CONFIG_SELECT} WHERE w.user_id = ? AND (w.created_at, w.id) > (?, ?)
    ORDER BY w.created_at, w.id LIMIT ?`,
  auditPageFirst: 'SELECT * FROM audit_events WHERE owner_kind = ? AND owner_id = ? ORDER BY id DESC LIMIT ?',
  auditPageAfter:
    'SELECT * FROM audit_events WHERE owner_kind = ? AND owner_id = ? AND id < ? ORDER BY id DESC LIMIT ?',
  configByOwner: 'SELECT * FROM ai_configs WHERE owner_kind = ? AND owner_id = ?',
  tokenByHash: `${TOKEN_SELECT} WHERE t.token_hash = ?`,
  gatewayTokenCaller: `${GATEWAY_TOKEN_CALLER_SELECT} WHERE t.token_hash = ?`,
  keyCallers: `${KEY_CALLERS_SELECT} WHERE b.fingerprint = ?`,
  deleteWorkspace: 'DELETE FROM workspaces WHERE id = ? AND user_id = ?',
  deleteConfig: 'DELETE FROM ai_configs WHERE owner_kind = ? AND owner_id = ?',
  deleteRuntimeTokens:
    "DELETE FROM api_tokens WHERE kind IN ('runtime', 'runtime_used', 'gateway') AND workspace_id = ?",
  deleteBindings: 'DELETE FROM runtime_key_bindings WHERE workspace_id = ?',
} as const;

/**
 * Every other statement both backends run the same way, written once with `?` placeholders
 * (PostgreSQL's are numbered by `numbered`). What differs by dialect stays with its backend: the
 * chain head's locking, the first config write's compare-and-set, bulk inserts, the ids read.
 */
export const STATEMENTS = {
  createMigrations:
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  recordMigration: 'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  userByName: 'SELECT * FROM users WHERE name = ?',
  insertUser:
    'INSERT INTO users (id, name, plan, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
  setPlan: 'UPDATE users SET plan = ? WHERE id = ?',
  insertToken:
    'INSERT INTO api_tokens (id, user_id, token_hash, kind, workspace_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  consumeRuntimeToken:
    "UPDATE api_tokens SET kind = 'runtime_used' WHERE token_hash = ? AND kind = 'runtime'",
  insertWorkspace: 'INSERT INTO workspaces (id, user_id, name, created_at) VALUES (?, ?, ?, ?)',
  /** Parameters: owner kind, owner id, then `aiConfigParams`. */
  insertConfig: `INSERT INTO ai_configs (owner_kind, owner_id, ${CONFIG_COLUMNS})
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  /** Parameters: `aiConfigParams`, then owner kind, owner id and the expected revision. */
  updateConfig: `UPDATE ai_configs SET mode = ?, provider = ?, model = ?, key_ciphertext = ?, key_wrapped_dek = ?,
  key_kek_id = ?, key_fingerprint = ?, key_updated_at = ?, revision = ?, updated_at = ?
  WHERE owner_kind = ? AND owner_id = ? AND revision = ?`,
  /** Parameters: `chainedAuditParams`. */
  insertAudit: `INSERT INTO audit_events (${CHAINED_AUDIT_COLUMNS})
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  unchainedAudit: 'SELECT * FROM audit_events WHERE chain_account IS NULL ORDER BY at, id',
  linkAudit: 'UPDATE audit_events SET chain_account = ?, chain_seq = ?, prev_hash = ?, hash = ? WHERE id = ?',
  chainHeads: 'SELECT * FROM audit_chain_heads ORDER BY account',
  policyByUser: 'SELECT * FROM byok_policies WHERE user_id = ?',
  insertPolicy:
    'INSERT INTO byok_policies (user_id, policy, revision, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING',
  updatePolicy:
    'UPDATE byok_policies SET policy = ?, revision = ?, updated_at = ? WHERE user_id = ? AND revision = ?',
  bindKey:
    'INSERT INTO runtime_key_bindings (fingerprint, workspace_id, created_at) VALUES (?, ?, ?) ON CONFLICT (fingerprint, workspace_id) DO NOTHING',
  openCredits:
    'INSERT INTO credit_usage (user_id, period_start, used) VALUES (?, ?, 0) ON CONFLICT (user_id, period_start) DO NOTHING',
  spendCredit: 'UPDATE credit_usage SET used = used + 1 WHERE user_id = ? AND period_start = ? AND used < ?',
  refundCredit: 'UPDATE credit_usage SET used = used - 1 WHERE user_id = ? AND period_start = ? AND used > 0',
  creditsUsed: 'SELECT used FROM credit_usage WHERE user_id = ? AND period_start = ?',
  configEnvelopes:
    'SELECT owner_kind, owner_id, key_ciphertext, key_wrapped_dek, key_kek_id FROM ai_configs WHERE key_ciphertext IS NOT NULL',
  secretEnvelopes: 'SELECT name, ciphertext, wrapped_dek, kek_id FROM service_secrets',
  rewrapConfig: `UPDATE ai_configs SET key_wrapped_dek = ?, key_kek_id = ?
  WHERE owner_kind = ? AND owner_id = ? AND key_ciphertext = ? AND key_wrapped_dek = ?`,
  rewrapSecret: 'UPDATE service_secrets SET wrapped_dek = ?, kek_id = ? WHERE name = ? AND wrapped_dek = ?',
  getSecret: 'SELECT * FROM service_secrets WHERE name = ?',
  insertSecret:
    'INSERT INTO service_secrets (name, ciphertext, wrapped_dek, kek_id, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
} as const;

/** `?` placeholders numbered as PostgreSQL's $1, $2, ... (the statements hold no `?` of their own). */
export const numbered = (sql: string) => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

/**
 * Those, plus the read of many workspaces by id, whose one parameter is spelled per backend (a JSON
 * array for SQLite's json_each, a text[] for PostgreSQL). It has no ownership term: it reads by
 * primary key only and the caller checks ownership, so no plan can pick the user's index and walk
 * the account.
 */
export type KeyedStatement = keyof typeof KEYED_STATEMENTS | 'workspaceAiConfigsByIds';
export const WORKSPACE_AI_CONFIGS_BY_IDS = {
  sqlite: `${WORKSPACE_AI_CONFIG_SELECT} WHERE w.id IN (SELECT value FROM json_each(?))`,
  postgres: `${WORKSPACE_AI_CONFIG_SELECT} WHERE w.id = ANY($1::text[])`,
} as const;

/** The page key of a workspace: [created_at, id]. */
export const workspaceKey = (ws: Workspace) => [ws.createdAt, ws.id] as const;

/** A page of `limit` items from `rows` fetched with LIMIT limit + 1 (the extra row says there is more). */
export function pageOf<T>(rows: T[], limit: number, key: (item: T) => readonly string[]): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return { items, next: more ? key(items[items.length - 1] as T) : null };
}

/** A page of the ids read's rows: those of the user, in page order, after `page.after`. */
export function ownedPage(userId: string, rows: Row[], page: PageRequest): Page<WorkspaceAiConfig> {
  const { after } = page;
  const owned = rows
    .filter((r) => r.user_id === userId)
    .map((r) => ({ workspace: toWorkspace(r), config: toAiConfig(r) }))
    .filter((w) => after === undefined || compareKeys(workspaceKey(w.workspace), after) > 0)
    .sort((a, b) => compareKeys(workspaceKey(a.workspace), workspaceKey(b.workspace)));
  return pageOf(owned.slice(0, page.limit + 1), page.limit, (w) => workspaceKey(w.workspace));
}

/** Byte order of two sort keys (ASCII, where UTF-16 order is byte order): <0, 0, >0. */
export function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

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
  ownerKind: String(r.owner_kind) as AuditOwnerKind,
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

export const chainedAuditParams = (
  e: AuditEvent,
  account: string,
  seq: number,
  prevHash: string,
  hash: string,
) => [...auditParams(e), account, seq, prevHash, hash];

export const toChainedAuditEvent = (r: Row): ChainedAuditEvent => ({
  ...toAuditEvent(r),
  account: String(r.chain_account),
  seq: Number(r.chain_seq),
  prevHash: String(r.prev_hash),
  hash: String(r.hash),
});

export const toChainHead = (r: Row): ChainHead => ({
  account: String(r.account),
  seq: Number(r.seq),
  hash: String(r.hash),
});

export const toByokPolicy = (r: Row): ByokPolicyRecord => ({
  policy: JSON.parse(String(r.policy)) as Record<string, unknown>,
  revision: Number(r.revision),
  updatedAt: String(r.updated_at),
});

/** The read of a page of audit chains, with `?` placeholders (see Storage.auditChain). */
export function auditChainQuery(q: {
  account?: string | undefined;
  after?: ChainPosition | undefined;
  since?: string | undefined;
  limit: number;
}): { sql: string; params: unknown[] } {
  const where: string[] = ['chain_account IS NOT NULL'];
  const params: unknown[] = [];
  if (q.account !== undefined) {
    where.push('chain_account = ?');
    params.push(q.account);
    if (q.after) {
      where.push('chain_seq > ?');
      params.push(q.after.seq);
    }
  } else if (q.after) {
    where.push('(chain_account, chain_seq) > (?, ?)');
    params.push(q.after.account, q.after.seq);
  }
  if (q.since !== undefined) {
    where.push('at >= ?');
    params.push(q.since);
  }
  params.push(q.limit);
  return {
    sql: `SELECT * FROM audit_events WHERE ${where.join(' AND ')} ORDER BY chain_account, chain_seq LIMIT ?`,
    params,
  };
}
