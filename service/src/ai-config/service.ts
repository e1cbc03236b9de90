import { createHash, randomBytes } from 'node:crypto';
import { AuditChain } from '../audit/chain.js';
import { type Envelope, EnvelopeError, type Envelopes } from '../crypto/envelope.js';
import { Fingerprinter } from '../crypto/fingerprint.js';
import { ApiError, notFound } from '../errors.js';
import { newId } from '../ids.js';
import { ByokPolicies, type PolicyClearance } from '../policy/service.js';
import {
  type AiConfigRecord,
  type AuditEvent,
  type ConfigOwner,
  type KeyEvent,
  recordId,
  type Storage,
  type User,
  type Workspace,
} from '../storage/types.js';
import { type DesiredConfig, decide } from './rules.js';
import type { AiConfigInput, AiConfigView } from './schemas.js';

export interface Actor {
  readonly userId: string;
  readonly name: string;
}

export const actorOf = (user: User): Actor => ({ userId: user.id, name: user.name });

/** What a user's defaults are before they set any: managed mode on Anthropic, like a new account. */
export const IMPLICIT_DEFAULTS: AiConfigRecord = {
  mode: 'managed',
  provider: 'anthropic',
  model: null,
  key: null,
  keyFingerprint: null,
  keyUpdatedAt: null,
  revision: 0,
  updatedAt: '',
};

const FINGERPRINT_SECRET = 'api-key-fingerprint';
/** The key of the audit chain's HMAC (audit/chain.ts), sealed like the fingerprint secret. */
const AUDIT_CHAIN_SECRET = 'audit-chain';
const READABLE_CACHE_MAX = 100_000;

/** One stored envelope of one record: its identity for the caches of what opens. */
const envelopeStamp = (owner: ConfigOwner, key: Envelope) =>
  createHash('sha256')
    .update(`${recordId(owner)}|${key.kekId}|${key.wrappedDek}|${key.ciphertext}`)
    .digest('base64');
const MAX_WRITE_ATTEMPTS = 8;

export const etagOf = (revision: number) => `"${revision}"`;

/**
 * Under `report`, the rules a write breaks go into the write's own audit event (same transaction,
 * same place in the chain) as `policy_violations`.
 */
const reportedChanges = (clearance: PolicyClearance): AuditEvent['changes'] =>
  clearance.reported.length ? { policy_violations: [null, clearance.reported.map((v) => v.rule)] } : {};

/** What a config's stored key is good for: nothing stored, usable, or stored but not decryptable. */
export type KeyState = AiConfigView['api_key_state'];

/** A stored key as the runtime and the gateway get it. */
export type StoredKey = { state: 'unset' } | { state: 'set'; key: string } | { state: 'unreadable' };

export function toView(owner: ConfigOwner, c: AiConfigRecord, keyState: KeyState): AiConfigView {
  const usable = keyState === 'set';
  return {
    workspace_id: owner.kind === 'workspace' ? owner.id : null,
    mode: c.mode,
    provider: c.provider as AiConfigView['provider'],
    model: c.model,
    api_key_set: usable,
    api_key_state: keyState,
    // A fingerprint copied along with a moved ciphertext says nothing about a usable key.
    api_key_fingerprint: usable ? c.keyFingerprint : null,
    api_key_updated_at: c.keyUpdatedAt,
    revision: c.revision,
    updated_at: c.revision === 0 ? null : c.updatedAt,
  };
}

/** True when If-Match allows a write at this revision (absent and `*` always do). */
function ifMatchAllows(ifMatch: string | undefined, revision: number): boolean {
  if (ifMatch === undefined) return true;
  return ifMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etagOf(revision));
}

/**
 * The AI configs of workspaces and user defaults: applies the PUT rules, encrypts keys, records
 * the audit trail. The one place that turns a request into stored state.
 */
export class AiConfigs {
  /** The write in progress (and those queued behind it) per config, in this instance. */
  private readonly writes = new Map<string, Promise<unknown>>();
  /** Whether an envelope opens, by record and envelope (see keyState). */
  private readonly readable = new Map<string, boolean>();
  /** The master key ids the `readable` answers were found under. */
  private readableKeks = '';
  /** keyState's answer by envelope object, under the master keys it was found with. */
  private readonly seenEnvelopes = new WeakMap<Envelope, { keks: string; state: KeyState }>();
  /** Envelopes already reported unreadable in the audit trail by this instance. */
  private readonly reportedUnreadable = new Set<string>();

  /** The account BYOK policies every config write is checked against. */
  readonly policies: ByokPolicies;

  private constructor(
    private readonly storage: Storage,
    private readonly envelopes: Envelopes,
    private readonly fingerprinter: Fingerprinter,
  ) {
    this.policies = new ByokPolicies(storage);
  }

  /**
   * Loads (or, on the very first start, creates) the fingerprint and audit chain secrets, sealed
   * under the KEK, and hands the chain to storage before anything writes an audit event.
   */
  static async open(storage: Storage, envelopes: Envelopes): Promise<AiConfigs> {
    const secret = await AiConfigs.serviceSecret(storage, envelopes, FINGERPRINT_SECRET);
    storage.setAuditChain(await AiConfigs.auditChain(storage, envelopes));
    // Events written before the chain existed are linked in, oldest first, before anything new.
    await storage.chainLegacyAudit();
    return new AiConfigs(storage, envelopes, new Fingerprinter(secret));
  }

  /** The audit chain under this deployment's sealed chain secret (also for `rigbox audit verify`). */
  static async auditChain(storage: Storage, envelopes: Envelopes): Promise<AuditChain> {
    return new AuditChain(await AiConfigs.serviceSecret(storage, envelopes, AUDIT_CHAIN_SECRET));
  }

  private static async serviceSecret(storage: Storage, envelopes: Envelopes, name: string): Promise<Buffer> {
    let sealed = await storage.getServiceSecret(name);
    const id = recordId({ kind: 'secret', id: name });
    if (!sealed) {
      const fresh = envelopes.seal(id, randomBytes(32).toString('base64'));
      sealed = await storage.insertServiceSecret(name, fresh, new Date().toISOString());
    }
    return Buffer.from(envelopes.open(id, sealed), 'base64');
  }

  fingerprint(apiKey: string): string {
    return this.fingerprinter.fingerprint(apiKey);
  }

  async workspace(user: User, workspaceId: string): Promise<Workspace> {
    const ws = await this.storage.getWorkspace(user.id, workspaceId);
    if (!ws) throw notFound('workspace');
    return ws;
  }

  /** A user's workspace and its current config in one read; 404 when it is not theirs. */
  async workspaceConfig(
    user: User,
    workspaceId: string,
  ): Promise<{ workspace: Workspace; config: AiConfigRecord }> {
    const found = await this.storage.getWorkspaceAiConfig(user.id, workspaceId);
    if (!found) throw notFound('workspace');
    return found;
  }

  async current(owner: ConfigOwner): Promise<AiConfigRecord> {
    const found = await this.storage.getAiConfig(owner);
    if (found) return found;
    if (owner.kind === 'defaults') return IMPLICIT_DEFAULTS;
    throw notFound('workspace');
  }

  /**
   * Applies a PUT. Idempotent: the same request again changes nothing and keeps the revision.
   * `read` is the config as the caller just read it (saves a read when no write is queued ahead).
   *
   * Writes to one config take turns within this instance: racing each other through
   * compare-and-set, two clients writing in a loop kept losing rounds to each other (read, encrypt,
   * find the revision moved), and one could run out of retries. Across instances the
   * compare-and-set in storage still decides.
   */
  async put(
    actor: Actor,
    owner: ConfigOwner,
    input: AiConfigInput,
    ifMatch?: string,
    read?: AiConfigRecord,
  ): Promise<{ config: AiConfigRecord; changed: boolean }> {
    const key = recordId(owner);
    const ahead = this.writes.get(key);
    const mine = (ahead ?? Promise.resolve())
      .catch(() => {})
      .then(() => this.write(actor, owner, input, ifMatch, ahead ? undefined : read));
    this.writes.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.writes.get(key) === mine) this.writes.delete(key);
    }
  }

  private async write(
    actor: Actor,
    owner: ConfigOwner,
    input: AiConfigInput,
    ifMatch: string | undefined,
    read: AiConfigRecord | undefined,
  ): Promise<{ config: AiConfigRecord; changed: boolean }> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = attempt === 0 && read ? read : await this.current(owner);
      if (!ifMatchAllows(ifMatch, current.revision)) {
        throw new ApiError(
          412,
          'revision_mismatch',
          `If-Match does not match the current revision (${etagOf(current.revision)}); read the config again and retry`,
        );
      }
      const desired = decide(current, input);
      // Every write is checked, a repeat of an unchanged config as well: under `enforce` no
      // request that states a config outside the policy succeeds.
      const clearance = await this.policies.clear(actor, owner, desired);
      const next = this.apply(owner, current, desired);
      if (!next) return { config: current, changed: false };
      const audit = this.auditEvent(
        actor,
        owner,
        'ai_config.updated',
        { ...next.changes, ...reportedChanges(clearance) },
        next.keyEvent,
        next.config.revision,
      );
      if (await this.storage.putAiConfig(owner, next.config, current.revision, audit, clearance.guard)) {
        return { config: next.config, changed: true };
      }
      // Another writer changed it between our read and write, or the policy changed: then the
      // request is checked again under the new one. With If-Match on a config that moved, the
      // caller asked to be told; without it, read again and re-apply the same request.
      const policyMoved = (await this.current(owner)).revision === current.revision;
      if (!policyMoved && ifMatch !== undefined && ifMatch.trim() !== '*') {
        throw new ApiError(
          412,
          'revision_mismatch',
          'the config changed while this request was applied; read it again and retry',
        );
      }
      // A random pause that grows with each lost race: two writers looping on one config fall
      // into step otherwise, and the same one can lose every round (seen under the crash test).
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** attempt));
    }
    throw new ApiError(409, 'write_conflict', 'the config is being changed by many writers at once; retry');
  }

  async createWorkspace(
    actor: Actor,
    name: string,
    input?: AiConfigInput,
  ): Promise<{ workspace: Workspace; config: AiConfigRecord }> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const created = await this.tryCreateWorkspace(actor, name, input);
      if (created) return created;
    }
    throw new ApiError(
      409,
      'write_conflict',
      'the BYOK policy kept changing while the workspace was created; retry',
    );
  }

  /** One attempt at createWorkspace; undefined when the policy changed before it committed. */
  private async tryCreateWorkspace(
    actor: Actor,
    name: string,
    input?: AiConfigInput,
  ): Promise<{ workspace: Workspace; config: AiConfigRecord } | undefined> {
    const now = new Date().toISOString();
    const workspace: Workspace = { id: newId('ws'), userId: actor.userId, name, createdAt: now };
    const owner: ConfigOwner = { kind: 'workspace', id: workspace.id };
    const account = { kind: 'account' as const, id: actor.userId };
    let config: AiConfigRecord;
    let source: string;
    let clearance: PolicyClearance;
    if (input) {
      const desired = decide({ ...IMPLICIT_DEFAULTS, provider: input.provider }, input);
      clearance = await this.policies.clear(actor, account, desired);
      config = this.apply(owner, { ...IMPLICIT_DEFAULTS, provider: input.provider }, desired)?.config ?? {
        ...IMPLICIT_DEFAULTS,
        revision: 1,
        updatedAt: now,
      };
      source = 'request';
    } else {
      // A snapshot of the defaults: later changes to the defaults do not reach this workspace.
      const defaults = await this.current({ kind: 'defaults', id: actor.userId });
      clearance = await this.policies.clear(actor, account, defaults, true);
      let key: Envelope | null = null;
      const stored = this.readKey({ kind: 'defaults', id: actor.userId }, defaults);
      if (stored.state === 'unreadable') {
        throw new ApiError(
          409,
          'api_key_unreadable',
          "the key stored in your AI defaults cannot be decrypted, so a new workspace cannot inherit it: set the defaults' key again, or create the workspace with an ai_config",
        );
      }
      if (stored.state === 'set') key = this.envelopes.seal(recordId(owner), stored.key);
      config = { ...defaults, key, revision: 1, updatedAt: now };
      source = 'defaults';
    }
    const changes: AuditEvent['changes'] = {
      name: [null, name],
      mode: [null, config.mode],
      provider: [null, config.provider],
      model: [null, config.model],
      source: [null, source],
      ...reportedChanges(clearance),
    };
    const audit = this.auditEvent(actor, owner, 'workspace.created', changes, config.key ? 'set' : null, 1);
    if (
      !(await this.storage.createWorkspace(workspace, { ...config, revision: 1 }, audit, clearance.guard))
    ) {
      return undefined;
    }
    return { workspace, config: { ...config, revision: 1 } };
  }

  async deleteWorkspace(actor: Actor, workspaceId: string): Promise<void> {
    const audit = this.auditEvent(
      actor,
      { kind: 'workspace', id: workspaceId },
      'workspace.deleted',
      {},
      null,
      null,
    );
    if (!(await this.storage.deleteWorkspace(actor.userId, workspaceId, audit))) throw notFound('workspace');
  }

  /** The stored key in the clear, for runtime injection only. Throws EnvelopeError on tampering. */
  openKey(owner: ConfigOwner, config: AiConfigRecord): string | undefined {
    return config.key ? this.envelopes.open(recordId(owner), config.key) : undefined;
  }

  /** The stored key for the runtime or the gateway: one that does not open is reported, never thrown. */
  readKey(owner: ConfigOwner, config: AiConfigRecord): StoredKey {
    if (!config.key) return { state: 'unset' };
    const stamp = envelopeStamp(owner, config.key);
    try {
      const key = this.envelopes.open(recordId(owner), config.key);
      this.remember(stamp, true);
      return { state: 'set', key };
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      this.remember(stamp, false);
      return { state: 'unreadable' };
    }
  }

  private remember(stamp: string, readable: boolean): void {
    // The answer holds while the configured master keys do; a key file reloaded with fewer keys
    // (or others) starts the cache over.
    const keks = this.envelopes.kekIds.join(',');
    if (keks !== this.readableKeks) {
      this.readable.clear();
      this.readableKeks = keks;
    }
    if (this.readable.size >= READABLE_CACHE_MAX) {
      this.readable.delete(this.readable.keys().next().value as string);
    }
    this.readable.set(stamp, readable);
  }

  /**
   * The state of a config's stored key, for its view. Decrypting is how to know a key still
   * opens; each envelope is tried once per instance (the answer cannot change while the envelope
   * stays the same), so a GET does not pay for a decryption.
   */
  keyState(owner: ConfigOwner, config: AiConfigRecord): KeyState {
    if (!config.key) return 'unset';
    const keks = this.envelopes.kekIds.join(',');
    // A record storage serves again unchanged (SQLite's read cache) brings the same envelope
    // object: its answer is found without hashing the envelope.
    const seen = this.seenEnvelopes.get(config.key);
    if (seen?.keks === keks) return seen.state;
    const stamp = envelopeStamp(owner, config.key);
    const known = keks === this.readableKeks ? this.readable.get(stamp) : undefined;
    const opens = known ?? this.readKey(owner, config).state === 'set';
    const state: KeyState = opens ? 'set' : 'unreadable';
    this.seenEnvelopes.set(config.key, { keks, state });
    return state;
  }

  /**
   * An envelope this instance just sealed opens under the master key it was sealed with: while that
   * key is configured, its view need not decrypt it to say so (a write's answer did, once per PUT).
   */
  private sealedNow(key: Envelope): void {
    const ids = this.envelopes.kekIds;
    if (ids.includes(key.kekId)) this.seenEnvelopes.set(key, { keks: ids.join(','), state: 'set' });
  }

  view(owner: ConfigOwner, config: AiConfigRecord): AiConfigView {
    return toView(owner, config, this.keyState(owner, config));
  }

  /**
   * Records that a stored key did not open when a runtime or the gateway needed it: an audit
   * event (once per envelope in this instance, so a retrying process does not flood the trail)
   * and a log line naming the record only. The caller answers 409 api_key_unreadable.
   */
  async reportUnreadable(
    owner: ConfigOwner,
    config: AiConfigRecord,
    userId: string,
    log: { error(obj: object, msg: string): void },
  ): Promise<ApiError> {
    const stamp = config.key ? envelopeStamp(owner, config.key) : recordId(owner);
    if (!this.reportedUnreadable.has(stamp)) {
      // Once per envelope: a process retrying in a loop floods neither the log nor the trail.
      if (this.reportedUnreadable.size >= READABLE_CACHE_MAX) this.reportedUnreadable.clear();
      this.reportedUnreadable.add(stamp);
      log.error({ record: recordId(owner) }, 'stored key failed to decrypt: refusing to use it');
      await this.storage.insertAuditEvent(
        this.auditEvent(
          { userId, name: 'rigbox' },
          owner,
          'ai_config.key_unreadable',
          {},
          null,
          config.revision,
        ),
      );
    }
    return new ApiError(
      409,
      'api_key_unreadable',
      'the stored key cannot be decrypted (it was altered, moved from another record, or sealed by a master key that is no longer configured) and is never used: set the key again',
    );
  }

  private apply(
    owner: ConfigOwner,
    current: AiConfigRecord,
    desired: DesiredConfig,
  ): { config: AiConfigRecord; changes: AuditEvent['changes']; keyEvent: KeyEvent | null } | undefined {
    const now = new Date().toISOString();
    const changes: AuditEvent['changes'] = {};
    for (const field of ['mode', 'provider', 'model'] as const) {
      if (current[field] !== desired[field]) changes[field] = [current[field], desired[field]];
    }
    let key = current.key;
    let keyFingerprint = current.keyFingerprint;
    let keyUpdatedAt = current.keyUpdatedAt;
    let keyEvent: KeyEvent | null = null;
    if (desired.key.kind === 'clear' && current.key) {
      key = null;
      keyFingerprint = null;
      keyUpdatedAt = now;
      keyEvent = 'cleared';
    } else if (desired.key.kind === 'set') {
      const fp = this.fingerprinter.fingerprint(desired.key.value);
      // The same key again is sealed again when the stored one does not open (altered, or sealed
      // by a master key no longer configured): the 409 api_key_unreadable asks for exactly that.
      const same = fp === current.keyFingerprint && current.key !== null;
      if (!same || this.keyState(owner, current) !== 'set') {
        key = this.envelopes.seal(recordId(owner), desired.key.value);
        this.sealedNow(key);
        keyFingerprint = fp;
        keyUpdatedAt = now;
        keyEvent = current.key && !same ? 'rotated' : 'set';
      }
    }
    if (Object.keys(changes).length === 0 && keyEvent === null) return undefined;
    return {
      config: {
        mode: desired.mode,
        provider: desired.provider,
        model: desired.model,
        key,
        keyFingerprint,
        keyUpdatedAt,
        revision: current.revision + 1,
        updatedAt: now,
      },
      changes,
      keyEvent,
    };
  }

  private auditEvent(
    actor: Actor,
    owner: ConfigOwner,
    action: string,
    changes: AuditEvent['changes'],
    keyEvent: KeyEvent | null,
    revision: number | null,
  ): AuditEvent {
    return {
      id: newId('evt'),
      ownerKind: owner.kind,
      ownerId: owner.id,
      actorUserId: actor.userId,
      actorName: actor.name,
      action,
      changes,
      keyEvent,
      revision,
      at: new Date().toISOString(),
    };
  }
}
