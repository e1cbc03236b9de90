import type { AuditChain, ChainedAuditEvent, ChainHead } from '../audit/chain.js';
import type { Envelope } from '../crypto/envelope.js';

export type AiMode = 'managed' | 'byok';
export type Plan = 'free' | 'pro';

/** Whose AI config a record is: a workspace's, or a user's defaults for new workspaces. */
export type ConfigOwnerKind = 'workspace' | 'defaults';
export interface ConfigOwner {
  readonly kind: ConfigOwnerKind;
  /** The workspace id, or the user id for defaults. */
  readonly id: string;
}

/** The identity bound into a stored key's encryption; a ciphertext moved elsewhere will not open. */
export const recordId = (owner: { kind: string; id: string }) => `${owner.kind}:${owner.id}`;

export interface User {
  readonly id: string;
  readonly name: string;
  readonly plan: Plan;
  readonly createdAt: string;
}

/**
 * user: the API; runtime: fetches a workspace's env once (then it is runtime_used, kept so that a
 * second use can be told apart from a wrong token); gateway: a workspace process calling the AI gateway.
 */
export type TokenKind = 'user' | 'runtime' | 'runtime_used' | 'gateway';
export interface TokenRecord {
  readonly id: string;
  readonly userId: string;
  /** SHA-256 of the token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly kind: TokenKind;
  readonly workspaceId: string | null;
  readonly expiresAt: string | null;
  readonly createdAt: string;
}

export interface Workspace {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  readonly createdAt: string;
}

export interface AiConfigRecord {
  readonly mode: AiMode;
  readonly provider: string;
  readonly model: string | null;
  readonly key: Envelope | null;
  readonly keyFingerprint: string | null;
  readonly keyUpdatedAt: string | null;
  readonly revision: number;
  readonly updatedAt: string;
}

export type KeyEvent = 'set' | 'rotated' | 'cleared';
/** What an audit event is about: a config, or the account itself (its BYOK policy, a refused create). */
export type AuditOwnerKind = ConfigOwnerKind | 'account';
export interface AuditEvent {
  readonly id: string;
  readonly ownerKind: AuditOwnerKind;
  readonly ownerId: string;
  readonly actorUserId: string;
  readonly actorName: string;
  readonly action: string;
  /** Changed fields as [before, after]; never key material. */
  readonly changes: Record<string, [unknown, unknown]>;
  readonly keyEvent: KeyEvent | null;
  readonly revision: number | null;
  readonly at: string;
}

/** An account's BYOK policy as stored: the document (rules and enforcement) is the policy module's. */
export interface ByokPolicyRecord {
  readonly policy: Readonly<Record<string, unknown>>;
  readonly revision: number;
  readonly updatedAt: string;
}

/**
 * A config write checked against the account's policy at `revision` (0: none): storage writes only
 * if that is still the policy in force when the write commits, so a policy change that races the
 * write either comes before it (and the write is checked again) or after it.
 */
export interface PolicyGuard {
  readonly userId: string;
  readonly revision: number;
}

/** A place in the audit chains, (account, seq): pages of `auditChain` continue after one. */
export interface ChainPosition {
  readonly account: string;
  readonly seq: number;
}

/** The sort key of a list item as strings, in the list's order: a page continues after one. */
export type PageKey = readonly string[];
/** Which page of a list: the items after `after` (from the start when absent), at most `limit`. */
export interface PageRequest {
  readonly after?: PageKey | undefined;
  readonly limit: number;
}
/** One page of a list, and the key to continue after (null on the last page). */
export interface Page<T> {
  readonly items: T[];
  readonly next: PageKey | null;
}

export interface WorkspaceAiConfig {
  readonly workspace: Workspace;
  readonly config: AiConfigRecord;
}

/** Who makes a gateway call, for which workspace, and that workspace's config as stored now. */
export interface GatewayCaller {
  readonly user: User;
  readonly workspaceId: string;
  readonly config: AiConfigRecord;
}

/** A stored envelope that a KEK rotation re-wraps. */
export interface StoredEnvelope {
  readonly table: 'ai_configs' | 'service_secrets';
  readonly recordId: string;
  readonly envelope: Envelope;
}

/**
 * The system of record. Every method that changes more than one row runs in one transaction.
 * Implementations: SQLite (embedded default) and PostgreSQL (scale-out), with the same behaviour.
 */
export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Counts the tokens this instance deleted or marked used (a workspace deleted takes its runtime
   * and gateway tokens with it): the token cache (auth/tokens.ts) drops what it found before a
   * change, so such a change binds this instance's next request at once.
   */
  readonly tokenChanges: number;
  close(): Promise<void>;

  ensureUser(name: string, now: string): Promise<User>;
  findUserByName(name: string): Promise<User | undefined>;
  setUserPlan(userId: string, plan: Plan): Promise<void>;
  insertToken(token: TokenRecord): Promise<void>;
  findToken(tokenHash: string): Promise<{ token: TokenRecord; user: User } | undefined>;
  /** Marks a runtime token used; true only for the first caller (atomic across instances). */
  consumeRuntimeToken(tokenHash: string): Promise<boolean>;

  /** Creates the workspace with its config and audit event; false when `guard`'s policy moved meanwhile. */
  createWorkspace(
    workspace: Workspace,
    config: AiConfigRecord,
    audit: AuditEvent,
    guard?: PolicyGuard,
  ): Promise<boolean>;
  /** Creates many workspaces, each with its config and audit event, in one transaction (imports, benchmarks). */
  createWorkspaces(
    entries: readonly { workspace: Workspace; config: AiConfigRecord; audit: AuditEvent }[],
  ): Promise<void>;
  /** By primary key, then the ownership check: the same cost at any account size. */
  getWorkspace(userId: string, workspaceId: string): Promise<Workspace | undefined>;
  /** A user's workspace with its AI config, in one read (the path every config GET and PUT takes). */
  getWorkspaceAiConfig(
    userId: string,
    workspaceId: string,
  ): Promise<{ workspace: Workspace; config: AiConfigRecord } | undefined>;
  /**
   * One page of a user's workspaces with their AI configs, oldest first; the key is
   * [created_at, id]. Keyset paging on an index: a page costs the same at any depth and account size.
   */
  listWorkspaceAiConfigs(userId: string, page: PageRequest): Promise<Page<WorkspaceAiConfig>>;
  /**
   * A page of the user's workspaces among `ids` with their AI configs, in the order and with the
   * keys of `listWorkspaceAiConfigs` (ids that are not the user's are left out). By primary key, then
   * the ownership check: the cost follows `ids`, not the account.
   */
  findWorkspaceAiConfigs(
    userId: string,
    ids: readonly string[],
    page: PageRequest,
  ): Promise<Page<WorkspaceAiConfig>>;
  /** Deletes the workspace and its config; the audit trail stays. False when not found. */
  deleteWorkspace(userId: string, workspaceId: string, audit: AuditEvent): Promise<boolean>;

  getAiConfig(owner: ConfigOwner): Promise<AiConfigRecord | undefined>;
  /**
   * Writes `next` only if the stored revision is still `expectedRevision` (0: no row yet), with
   * its audit event, in one transaction. False when another writer got there first.
   */
  putAiConfig(
    owner: ConfigOwner,
    next: AiConfigRecord,
    expectedRevision: number,
    audit: AuditEvent,
    guard?: PolicyGuard,
  ): Promise<boolean>;
  /** One page of an owner's audit trail, newest first; the key is [id]. */
  listAudit(owner: ConfigOwner, page: PageRequest): Promise<Page<AuditEvent>>;
  /** An audit event on its own (one that goes with no config write, such as a key found unreadable). */
  insertAuditEvent(audit: AuditEvent): Promise<void>;

  /**
   * The chain every audit event is appended to (required before the first audit write). Appends of
   * one account are serialized inside the writing transaction: a locked head row on PostgreSQL,
   * SQLite's immediate transactions.
   */
  setAuditChain(chain: AuditChain): void;
  /**
   * Chained events in (account, seq) order after `after`, at most `limit`: of one account, or of
   * all (verification). `since` keeps only events at or after that time.
   */
  auditChain(query: {
    account?: string | undefined;
    after?: ChainPosition | undefined;
    since?: string | undefined;
    limit: number;
  }): Promise<ChainedAuditEvent[]>;
  /** Every account's chain head. */
  auditChainHeads(): Promise<ChainHead[]>;
  /**
   * Links audit events stored before the chain existed (an upgraded data folder or database) into
   * their accounts' chains, oldest first; the number linked. Run at start, before serving.
   */
  chainLegacyAudit(): Promise<number>;

  getByokPolicy(userId: string): Promise<ByokPolicyRecord | undefined>;
  /** Compare-and-set, as putAiConfig (0: no policy yet), with its audit event, in one transaction. */
  putByokPolicy(
    userId: string,
    next: ByokPolicyRecord,
    expectedRevision: number,
    audit: AuditEvent,
  ): Promise<boolean>;

  /** A gateway token with its user and its workspace's current config, in one read. */
  findGatewayTokenCaller(
    tokenHash: string,
  ): Promise<{ token: TokenRecord; caller: GatewayCaller } | undefined>;
  /** The workspaces whose runtime was given a key with this fingerprint, each with owner and config. */
  findKeyCallers(fingerprint: string): Promise<GatewayCaller[]>;
  /** Records that a workspace's runtime was given a key with this fingerprint (gateway auth by key). */
  bindRuntimeKey(fingerprint: string, workspaceId: string, now: string): Promise<void>;
  /**
   * Spends one managed credit of the user's period if fewer than `limit` are used, atomically
   * (never below zero, never twice for one call, across instances). False when none are left.
   */
  spendCredit(userId: string, periodStart: string, limit: number): Promise<boolean>;
  /** Gives back a credit spent on a call that never reached the upstream. */
  refundCredit(userId: string, periodStart: string): Promise<void>;
  creditsUsed(userId: string, periodStart: string): Promise<number>;

  listEnvelopes(): Promise<StoredEnvelope[]>;
  /** Swaps one wrapped data key for another, only if it is still the one that was read. */
  replaceWrappedDek(stored: StoredEnvelope, next: Envelope): Promise<boolean>;
  getServiceSecret(name: string): Promise<Envelope | undefined>;
  /** Inserts unless present (another instance may race); returns the stored one. */
  insertServiceSecret(name: string, envelope: Envelope, now: string): Promise<Envelope>;
}
