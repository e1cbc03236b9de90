/**
 * Versioned schema migrations, written in SQL that SQLite and PostgreSQL both accept, so one list
 * serves both backends. Append only: never edit a migration that has shipped.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'users, tokens, workspaces, ai configs, audit, service secrets',
    sql: `
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  plan TEXT NOT NULL DEFAULT 'free',
  created_at TEXT NOT NULL
);
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  workspace_id TEXT,
  expires_at TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX workspaces_by_user ON workspaces(user_id, created_at);
CREATE TABLE ai_configs (
  owner_kind TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  mode TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT,
  key_ciphertext TEXT,
  key_wrapped_dek TEXT,
  key_kek_id TEXT,
  key_fingerprint TEXT,
  key_updated_at TEXT,
  revision INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (owner_kind, owner_id)
);
CREATE TABLE audit_events (
  id TEXT PRIMARY KEY,
  owner_kind TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  actor_user_id TEXT NOT NULL,
  actor_name TEXT NOT NULL,
  action TEXT NOT NULL,
  changes TEXT NOT NULL,
  key_event TEXT,
  revision INTEGER,
  at TEXT NOT NULL
);
CREATE INDEX audit_by_owner ON audit_events(owner_kind, owner_id, id);
CREATE TABLE service_secrets (
  name TEXT PRIMARY KEY,
  ciphertext TEXT NOT NULL,
  wrapped_dek TEXT NOT NULL,
  kek_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'runtime key bindings and managed credits',
    sql: `
CREATE TABLE runtime_key_bindings (
  fingerprint TEXT NOT NULL,
  workspace_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (fingerprint, workspace_id)
);
CREATE TABLE credit_usage (
  user_id TEXT NOT NULL,
  period_start TEXT NOT NULL,
  used INTEGER NOT NULL,
  PRIMARY KEY (user_id, period_start)
);
`,
  },
  {
    version: 3,
    name: 'indexes for keyset pages of workspaces and for deleting a workspace',
    // The page key (created_at, id) in full, so the index alone gives a page's order and its start
    // (the old index stopped at created_at). Runtime tokens and key bindings are deleted with their
    // workspace: by workspace_id, which no index led with, so each delete read the whole table.
    sql: `
CREATE INDEX workspaces_by_user_page ON workspaces(user_id, created_at, id);
DROP INDEX workspaces_by_user;
CREATE INDEX api_tokens_by_workspace ON api_tokens(workspace_id);
CREATE INDEX runtime_key_bindings_by_workspace ON runtime_key_bindings(workspace_id);
`,
  },
  {
    version: 4,
    name: 'BYOK policies and the tamper-evident audit chain',
    // Each account's audit events form one chain: chain_seq counts from 1, prev_hash is the hash of
    // the event before, hash an HMAC over the canonical event (audit/chain.ts). The head row is what
    // a writer locks to append, so appends of one account are serialized across instances, and it
    // also pins the chain's end (deleting the last events is a broken link, not a shorter chain).
    sql: `
CREATE TABLE byok_policies (
  user_id TEXT PRIMARY KEY,
  policy TEXT NOT NULL,
  revision INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);
ALTER TABLE audit_events ADD COLUMN chain_account TEXT;
ALTER TABLE audit_events ADD COLUMN chain_seq INTEGER;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_chain_order ON audit_events(chain_account, chain_seq);
CREATE TABLE audit_chain_heads (
  account TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
`,
  },
];
