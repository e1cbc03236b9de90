import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type AuditChain, type ChainedAuditEvent, type ChainHead, GENESIS_HASH } from '../audit/chain.js';
import type { Envelope } from '../crypto/envelope.js';
import { newId } from '../ids.js';
import { MIGRATIONS } from './migrations.js';
import {
  aiConfigParams,
  auditChainQuery,
  chainedAuditParams,
  KEYED_STATEMENTS,
  ownedPage,
  pageOf,
  STATEMENTS,
  toAiConfig,
  toAuditEvent,
  toByokPolicy,
  toChainedAuditEvent,
  toChainHead,
  toGatewayCaller,
  toOwner,
  toToken,
  toUser,
  toWorkspace,
  WORKSPACE_AI_CONFIGS_BY_IDS,
  workspaceKey,
} from './rows.js';
import type {
  AiConfigRecord,
  AuditEvent,
  ByokPolicyRecord,
  ConfigOwner,
  GatewayCaller,
  Page,
  PageRequest,
  Plan,
  PolicyGuard,
  Storage,
  StoredEnvelope,
  TokenRecord,
  User,
  Workspace,
  WorkspaceAiConfig,
} from './types.js';

type Row = Record<string, unknown>;

/** Entries of the read cache (SqliteStorage.configReads): a few MiB at most. */
const CONFIG_READS_MAX = 10_000;

/** A cached read is shared by every caller that gets it: none may change it. */
function frozen(found: WorkspaceAiConfig): WorkspaceAiConfig {
  Object.freeze(found.workspace);
  if (found.config.key) Object.freeze(found.config.key);
  Object.freeze(found.config);
  return Object.freeze(found);
}

/** The embedded default: one SQLite file in the data folder, WAL mode. */
export class SqliteStorage implements Storage {
  readonly kind = 'sqlite' as const;
  tokenChanges = 0;
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<SqliteStorage['prepareAll']>;
  private chain: AuditChain | undefined;
  /**
   * Workspaces with their config as last read, by workspace and user, kept while the database is
   * unchanged (see `unchangedReads`). A GET ai-config is mostly this read; tofu refreshing hundreds
   * of resources reads each config again and again between writes.
   */
  private readonly configReads = new Map<string, WorkspaceAiConfig>();
  /** This connection's `total_changes()` and `data_version` when `configReads` was last valid. */
  private readChanges = -1;
  private readVersion: number | undefined;

  constructor(readonly file: string) {
    if (file !== ':memory:') {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      // Owner-only from the first byte: SQLite gives the -wal and -shm files the database's mode.
      closeSync(openSync(file, 'a', 0o600));
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    if (file !== ':memory:') {
      // Data folders made by earlier versions held 0644 files.
      for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    }
    // NORMAL in WAL mode loses nothing on a process crash; only an OS crash may drop the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
    this.stmt = this.prepareAll();
  }

  private prepareAll() {
    const p = (sql: string) => this.db.prepare(sql);
    const keyed = Object.fromEntries(
      Object.entries(KEYED_STATEMENTS).map(([name, sql]) => [name, p(sql)]),
    ) as Record<keyof typeof KEYED_STATEMENTS, Database.Statement>;
    const shared = Object.fromEntries(
      Object.entries(STATEMENTS).map(([name, sql]) => [name, p(sql)]),
    ) as Record<keyof typeof STATEMENTS, Database.Statement>;
    return {
      ...keyed,
      ...shared,
      workspaceAiConfigsByIds: p(WORKSPACE_AI_CONFIGS_BY_IDS.sqlite),
      totalChanges: p('SELECT total_changes()').pluck(),
      dataVersion: p('SELECT data_version FROM pragma_data_version').pluck(),
      chainHead: p('SELECT * FROM audit_chain_heads WHERE account = ?'),
      setChainHead: p(
        'INSERT INTO audit_chain_heads (account, seq, hash) VALUES (?, ?, ?) ON CONFLICT (account) DO UPDATE SET seq = excluded.seq, hash = excluded.hash',
      ),
    };
  }

  private migrate(): void {
    this.db.exec(STATEMENTS.createMigrations);
    for (const m of MIGRATIONS) {
      // Checked inside the write transaction: two processes opening a new data folder at once
      // must not both apply a migration.
      this.db
        .transaction(() => {
          const done = this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
          if (done) return;
          this.db.exec(m.sql);
          this.db.prepare(STATEMENTS.recordMigration).run(m.version, m.name, new Date().toISOString());
        })
        .immediate();
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async ensureUser(name: string, now: string): Promise<User> {
    this.stmt.insertUser.run(newId('usr'), name, 'free', now);
    return toUser(this.stmt.userByName.get(name) as Row);
  }

  async findUserByName(name: string): Promise<User | undefined> {
    const row = this.stmt.userByName.get(name) as Row | undefined;
    return row ? toUser(row) : undefined;
  }

  async setUserPlan(userId: string, plan: Plan): Promise<void> {
    this.stmt.setPlan.run(plan, userId);
  }

  async insertToken(t: TokenRecord): Promise<void> {
    this.stmt.insertToken.run(t.id, t.userId, t.tokenHash, t.kind, t.workspaceId, t.expiresAt, t.createdAt);
  }

  async consumeRuntimeToken(tokenHash: string): Promise<boolean> {
    const consumed = this.stmt.consumeRuntimeToken.run(tokenHash).changes === 1;
    if (consumed) this.tokenChanges++;
    return consumed;
  }

  async insertAuditEvent(audit: AuditEvent): Promise<void> {
    this.db.transaction(() => this.appendAudit(audit)).immediate();
  }

  setAuditChain(chain: AuditChain): void {
    this.chain = chain;
  }

  /**
   * Appends an event to its account's chain. Only inside an immediate transaction: that holds the
   * database's write lock from its start, so no other writer (thread or process) can append between
   * our read of the head and our write of the new one.
   */
  private appendAudit(audit: AuditEvent): void {
    if (!this.chain) throw new Error('audit write before the audit chain was set');
    const account = audit.actorUserId;
    const head = this.stmt.chainHead.get(account) as Row | undefined;
    const seq = head ? Number(head.seq) + 1 : 1;
    const prevHash = head ? String(head.hash) : GENESIS_HASH;
    const hash = this.chain.link(audit, account, seq, prevHash);
    this.stmt.insertAudit.run(...chainedAuditParams(audit, account, seq, prevHash, hash));
    this.stmt.setChainHead.run(account, seq, hash);
  }

  /** True when the account's policy is still at the guard's revision. Inside the write's transaction. */
  private policyHolds(guard: PolicyGuard | undefined): boolean {
    if (!guard) return true;
    const row = this.stmt.policyByUser.get(guard.userId) as Row | undefined;
    return (row ? Number(row.revision) : 0) === guard.revision;
  }

  async auditChain(query: {
    account?: string | undefined;
    after?: { account: string; seq: number } | undefined;
    since?: string | undefined;
    limit: number;
  }): Promise<ChainedAuditEvent[]> {
    const { sql, params } = auditChainQuery(query);
    return (this.db.prepare(sql).all(...params) as Row[]).map(toChainedAuditEvent);
  }

  async chainLegacyAudit(): Promise<number> {
    return this.db
      .transaction(() => {
        const rows = this.stmt.unchainedAudit.all() as Row[];
        const link = this.stmt.linkAudit;
        for (const row of rows) {
          if (!this.chain) throw new Error('audit write before the audit chain was set');
          const audit = toAuditEvent(row);
          const account = audit.actorUserId;
          const head = this.stmt.chainHead.get(account) as Row | undefined;
          const seq = head ? Number(head.seq) + 1 : 1;
          const prevHash = head ? String(head.hash) : GENESIS_HASH;
          const hash = this.chain.link(audit, account, seq, prevHash);
          link.run(account, seq, prevHash, hash, audit.id);
          this.stmt.setChainHead.run(account, seq, hash);
        }
        return rows.length;
      })
      .immediate();
  }

  async auditChainHeads(): Promise<ChainHead[]> {
    return (this.stmt.chainHeads.all() as Row[]).map(toChainHead);
  }

  async getByokPolicy(userId: string): Promise<ByokPolicyRecord | undefined> {
    const row = this.stmt.policyByUser.get(userId) as Row | undefined;
    return row ? toByokPolicy(row) : undefined;
  }

  async putByokPolicy(
    userId: string,
    next: ByokPolicyRecord,
    expectedRevision: number,
    audit: AuditEvent,
  ): Promise<boolean> {
    const doc = JSON.stringify(next.policy);
    return this.db
      .transaction(() => {
        const res =
          expectedRevision === 0
            ? this.stmt.insertPolicy.run(userId, doc, next.revision, next.updatedAt)
            : this.stmt.updatePolicy.run(doc, next.revision, next.updatedAt, userId, expectedRevision);
        if (res.changes !== 1) return false;
        this.appendAudit(audit);
        return true;
      })
      .immediate();
  }

  async findToken(tokenHash: string): Promise<{ token: TokenRecord; user: User } | undefined> {
    const r = this.stmt.tokenByHash.get(tokenHash) as Row | undefined;
    if (!r) return undefined;
    return {
      token: toToken(r),
      user: toOwner(r),
    };
  }

  async createWorkspace(
    ws: Workspace,
    config: AiConfigRecord,
    audit: AuditEvent,
    guard?: PolicyGuard,
  ): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (!this.policyHolds(guard)) return false;
        this.stmt.insertWorkspace.run(ws.id, ws.userId, ws.name, ws.createdAt);
        this.stmt.insertConfig.run('workspace', ws.id, ...aiConfigParams(config));
        this.appendAudit(audit);
        return true;
      })
      .immediate();
  }

  async createWorkspaces(
    entries: readonly { workspace: Workspace; config: AiConfigRecord; audit: AuditEvent }[],
  ): Promise<void> {
    this.db
      .transaction(() => {
        for (const { workspace: ws, config, audit } of entries) {
          this.stmt.insertWorkspace.run(ws.id, ws.userId, ws.name, ws.createdAt);
          this.stmt.insertConfig.run('workspace', ws.id, ...aiConfigParams(config));
          this.appendAudit(audit);
        }
      })
      .immediate();
  }

  async getWorkspace(userId: string, workspaceId: string): Promise<Workspace | undefined> {
    const r = this.stmt.workspaceById.get(workspaceId, userId) as Row | undefined;
    return r ? toWorkspace(r) : undefined;
  }

  async getWorkspaceAiConfig(
    userId: string,
    workspaceId: string,
  ): Promise<{ workspace: Workspace; config: AiConfigRecord } | undefined> {
    const reads = this.unchangedReads();
    const key = `${workspaceId} ${userId}`;
    const hit = reads?.get(key);
    if (hit) return hit;
    const r = this.stmt.workspaceAiConfigById.get(workspaceId, userId) as Row | undefined;
    if (!r) return undefined;
    const found = frozen({ workspace: toWorkspace(r), config: toAiConfig(r) });
    if (reads) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      if (reads.size >= CONFIG_READS_MAX) reads.delete(reads.keys().next().value as string);
      reads.set(key, found);
    }
    return found;
  }

  /**
   * The cached reads, emptied first if anything in the database changed since they were made, or
   * undefined inside a transaction (what it reads may yet be rolled back). Any change counts, by
   * this connection (`total_changes()`: every row an INSERT, UPDATE or DELETE touched, rolled back
   * or not) or committed by any other connection, in this process or another (`data_version`, e.g.
   * `rigbox kek rotate` or `rigbox token create` while the service runs). So a read from the cache
   * is what the statement would return now: no lag, whoever wrote. Called and used synchronously,
   * with no await between the check and the read it guards.
   */
  private unchangedReads(): Map<string, WorkspaceAiConfig> | undefined {
    if (this.db.inTransaction) return undefined;
    const changes = this.stmt.totalChanges.get() as number;
    if (changes !== this.readChanges) {
      // This connection wrote since. The next read with no write in between takes data_version
      // (which opens a read transaction, the dearer half) and caches again; a run of writes, each
      // reading its config first, pays only this check.
      this.configReads.clear();
      this.readChanges = changes;
      this.readVersion = undefined;
      return undefined;
    }
    // Taken before the read it guards: a commit between the two only empties the cache next time.
    const version = this.stmt.dataVersion.get() as number;
    if (version !== this.readVersion) {
      this.configReads.clear();
      this.readVersion = version;
    }
    return this.configReads;
  }

  async listWorkspaceAiConfigs(userId: string, page: PageRequest): Promise<Page<WorkspaceAiConfig>> {
    const rows = (
      page.after
        ? this.stmt.workspacePageAfter.all(userId, ...page.after, page.limit + 1)
        : this.stmt.workspacePageFirst.all(userId, page.limit + 1)
    ) as Row[];
    const items = rows.map((r) => ({ workspace: toWorkspace(r), config: toAiConfig(r) }));
    return pageOf(items, page.limit, (w) => workspaceKey(w.workspace));
  }

  async findWorkspaceAiConfigs(
    userId: string,
    ids: readonly string[],
    page: PageRequest,
  ): Promise<Page<WorkspaceAiConfig>> {
    // One statement for any number of ids: they come as one JSON array parameter.
    const rows = this.stmt.workspaceAiConfigsByIds.all(JSON.stringify(ids)) as Row[];
    return ownedPage(userId, rows, page);
  }

  async deleteWorkspace(userId: string, workspaceId: string, audit: AuditEvent): Promise<boolean> {
    const deleted = this.db
      .transaction(() => {
        const gone = this.stmt.deleteWorkspace.run(workspaceId, userId).changes === 1;
        if (!gone) return false;
        this.stmt.deleteConfig.run('workspace', workspaceId);
        this.stmt.deleteRuntimeTokens.run(workspaceId);
        this.stmt.deleteBindings.run(workspaceId);
        this.appendAudit(audit);
        return true;
      })
      .immediate();
    if (deleted) this.tokenChanges++;
    return deleted;
  }

  async getAiConfig(owner: ConfigOwner): Promise<AiConfigRecord | undefined> {
    const r = this.stmt.configByOwner.get(owner.kind, owner.id) as Row | undefined;
    return r ? toAiConfig(r) : undefined;
  }

  async putAiConfig(
    owner: ConfigOwner,
    next: AiConfigRecord,
    expectedRevision: number,
    audit: AuditEvent,
    guard?: PolicyGuard,
  ): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (!this.policyHolds(guard)) return false;
        if (expectedRevision === 0) {
          if (this.stmt.configByOwner.get(owner.kind, owner.id)) return false;
          this.stmt.insertConfig.run(owner.kind, owner.id, ...aiConfigParams(next));
        } else {
          const res = this.stmt.updateConfig.run(
            ...aiConfigParams(next),
            owner.kind,
            owner.id,
            expectedRevision,
          );
          if (res.changes !== 1) return false;
        }
        this.appendAudit(audit);
        return true;
      })
      .immediate();
  }

  async listAudit(owner: ConfigOwner, page: PageRequest): Promise<Page<AuditEvent>> {
    const rows = (
      page.after
        ? this.stmt.auditPageAfter.all(owner.kind, owner.id, ...page.after, page.limit + 1)
        : this.stmt.auditPageFirst.all(owner.kind, owner.id, page.limit + 1)
    ) as Row[];
    return pageOf(rows.map(toAuditEvent), page.limit, (e) => [e.id]);
  }

  async bindRuntimeKey(fingerprint: string, workspaceId: string, now: string): Promise<void> {
    this.stmt.bindKey.run(fingerprint, workspaceId, now);
  }

  async findGatewayTokenCaller(
    tokenHash: string,
  ): Promise<{ token: TokenRecord; caller: GatewayCaller } | undefined> {
    const r = this.stmt.gatewayTokenCaller.get(tokenHash) as Row | undefined;
    return r ? { token: toToken(r), caller: toGatewayCaller(r) } : undefined;
  }

  async findKeyCallers(fingerprint: string): Promise<GatewayCaller[]> {
    return (this.stmt.keyCallers.all(fingerprint) as Row[]).map(toGatewayCaller);
  }

  async spendCredit(userId: string, periodStart: string, limit: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        this.stmt.openCredits.run(userId, periodStart);
        return this.stmt.spendCredit.run(userId, periodStart, limit).changes === 1;
      })
      .immediate();
  }

  async refundCredit(userId: string, periodStart: string): Promise<void> {
    this.stmt.refundCredit.run(userId, periodStart);
  }

  async creditsUsed(userId: string, periodStart: string): Promise<number> {
    const r = this.stmt.creditsUsed.get(userId, periodStart) as Row | undefined;
    return r ? Number(r.used) : 0;
  }

  async listEnvelopes(): Promise<StoredEnvelope[]> {
    const configs = (this.stmt.configEnvelopes.all() as Row[]).map((r) => ({
      table: 'ai_configs' as const,
      recordId: `${r.owner_kind}:${r.owner_id}`,
      envelope: {
        ciphertext: String(r.key_ciphertext),
        wrappedDek: String(r.key_wrapped_dek),
        kekId: String(r.key_kek_id),
      },
    }));
    const secrets = (this.stmt.secretEnvelopes.all() as Row[]).map((r) => ({
      table: 'service_secrets' as const,
      recordId: `secret:${r.name}`,
      envelope: {
        ciphertext: String(r.ciphertext),
        wrappedDek: String(r.wrapped_dek),
        kekId: String(r.kek_id),
      },
    }));
    return [...configs, ...secrets];
  }

  async replaceWrappedDek(stored: StoredEnvelope, next: Envelope): Promise<boolean> {
    const [kind, ...rest] = stored.recordId.split(':');
    const id = rest.join(':');
    if (stored.table === 'ai_configs') {
      return (
        this.stmt.rewrapConfig.run(
          next.wrappedDek,
          next.kekId,
          kind,
          id,
          stored.envelope.ciphertext,
          stored.envelope.wrappedDek,
        ).changes === 1
      );
    }
    return (
      this.stmt.rewrapSecret.run(next.wrappedDek, next.kekId, id, stored.envelope.wrappedDek).changes === 1
    );
  }

  async getServiceSecret(name: string): Promise<Envelope | undefined> {
    const r = this.stmt.getSecret.get(name) as Row | undefined;
    return r
      ? { ciphertext: String(r.ciphertext), wrappedDek: String(r.wrapped_dek), kekId: String(r.kek_id) }
      : undefined;
  }

  async insertServiceSecret(name: string, envelope: Envelope, now: string): Promise<Envelope> {
    this.stmt.insertSecret.run(name, envelope.ciphertext, envelope.wrappedDek, envelope.kekId, now);
    return (await this.getServiceSecret(name)) as Envelope;
  }
}
