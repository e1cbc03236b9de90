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

/** user: the API; runtime: fetches a workspace's env once; gateway: a workspace process calling the AI gateway. */
export type TokenKind = 'user' | 'runtime' | 'gateway';
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
export interface AuditEvent {
  readonly id: string;
  readonly ownerKind: ConfigOwnerKind;
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
  close(): Promise<void>;

  ensureUser(name: string, now: string): Promise<User>;
  findUserByName(name: string): Promise<User | undefined>;
  setUserPlan(userId: string, plan: Plan): Promise<void>;
  insertToken(token: TokenRecord): Promise<void>;
  findToken(tokenHash: string): Promise<{ token: TokenRecord; user: User } | undefined>;

  createWorkspace(workspace: Workspace, config: AiConfigRecord, audit: AuditEvent): Promise<void>;
  getWorkspace(userId: string, workspaceId: string): Promise<Workspace | undefined>;
  /** A user's workspace with its AI config, in one read (the path every config GET and PUT takes). */
  getWorkspaceAiConfig(
    userId: string,
    workspaceId: string,
  ): Promise<{ workspace: Workspace; config: AiConfigRecord } | undefined>;
  /**
   * A user's workspaces with their AI configs in one read, oldest first; only those named in `ids`
   * when given (ids that are not the user's are left out).
   */
  listWorkspaceAiConfigs(
    userId: string,
    ids?: readonly string[],
  ): Promise<{ workspace: Workspace; config: AiConfigRecord }[]>;
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
  ): Promise<boolean>;
  listAudit(owner: ConfigOwner, limit: number): Promise<AuditEvent[]>;

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
