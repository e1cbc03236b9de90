import { Pool, type PoolClient } from 'pg';
import { type AuditChain, type ChainedAuditEvent, type ChainHead, GENESIS_HASH } from '../audit/chain.js';
import type { Envelope } from '../crypto/envelope.js';
import { newId } from '../ids.js';
import { MIGRATIONS } from './migrations.js';
import {
  aiConfigParams,
  auditChainQuery,
  CHAINED_AUDIT_COLUMNS,
  CONFIG_COLUMNS,
  chainedAuditParams,
  KEYED_STATEMENTS,
  type KeyedStatement,
  numbered,
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

/**
 * Serialises schema migrations across instances that start at once against one database (advisory
 * locks are per database). Any constant works; this one spells "rigbox" in ASCII.
 */
const MIGRATION_LOCK = 0x726967626f78;

/** Thrown inside a transaction to roll it back and answer false (a compare-and-set that lost). */
class Lost extends Error {}
// The "no row yet" case of compare-and-set: of two first writers, exactly one inserts.
const INSERT_FIRST_CONFIG = numbered(
  `${STATEMENTS.insertConfig} ON CONFLICT (owner_kind, owner_id) DO NOTHING`,
);

/** Moves an account's chain head, locked by lockChainHead: account, seq, hash. */
const SET_CHAIN_HEAD = 'UPDATE audit_chain_heads SET seq = $2, hash = $3 WHERE account = $1';

/** The statements shared with SQLite (rows.ts), numbered for PostgreSQL once. */
const SQL: Record<KeyedStatement | keyof typeof STATEMENTS, string> = {
  ...(Object.fromEntries(
    [...Object.entries(KEYED_STATEMENTS), ...Object.entries(STATEMENTS)].map(([name, sql]) => [
      name,
      numbered(sql),
    ]),
  ) as Record<keyof typeof KEYED_STATEMENTS | keyof typeof STATEMENTS, string>),
  workspaceAiConfigsByIds: WORKSPACE_AI_CONFIGS_BY_IDS.postgres,
};

/**
 * PostgreSQL, for deployments that run several service instances against one database. Same schema,
 * migrations and behaviour as the SQLite backend; compare-and-set writes hold across instances.
 */
export class PostgresStorage implements Storage {
  readonly kind = 'postgres' as const;
  tokenChanges = 0;
  private closed = false;
  private chain: AuditChain | undefined;

  private constructor(private readonly pool: Pool) {}

  /** Connects, applies any pending migrations, and returns the storage; fails if the database is unreachable. */
  static async connect(url: string): Promise<PostgresStorage> {
    const pool = new Pool({
      connectionString: url,
      application_name: 'rigbox',
      connectionTimeoutMillis: 10_000,
    });
    // An idle pooled connection that the server drops (restart, failover) emits 'error'; without a
    // listener that would crash the process. The pool replaces the client on the next checkout, and
    // the query that needed it fails on its own.
    pool.on('error', () => {});
    const storage = new PostgresStorage(pool);
    try {
      await storage.migrate();
    } catch (err) {
      await storage.close();
      throw err;
    }
    return storage;
  }

  private async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  private async one(sql: string, params: unknown[]): Promise<Row | undefined> {
    return (await this.pool.query<Row>(sql, params)).rows[0];
  }

  private async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      // Taken before anything else, so a second instance waits here and then finds the work done.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(SQL.createMigrations);
      const applied = new Set(
        (await client.query<Row>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)),
      );
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        // No parameters: the simple query protocol, which runs a script of several statements.
        await client.query(m.sql);
        await client.query(SQL.recordMigration, [m.version, m.name, new Date().toISOString()]);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async ensureUser(name: string, now: string): Promise<User> {
    await this.pool.query(SQL.insertUser, [newId('usr'), name, 'free', now]);
    return toUser((await this.one(SQL.userByName, [name])) as Row);
  }

  async findUserByName(name: string): Promise<User | undefined> {
    const row = await this.one(SQL.userByName, [name]);
    return row ? toUser(row) : undefined;
  }

  async setUserPlan(userId: string, plan: Plan): Promise<void> {
    await this.pool.query(SQL.setPlan, [plan, userId]);
  }

  async insertToken(t: TokenRecord): Promise<void> {
    await this.pool.query(SQL.insertToken, [
      t.id,
      t.userId,
      t.tokenHash,
      t.kind,
      t.workspaceId,
      t.expiresAt,
      t.createdAt,
    ]);
  }

  async consumeRuntimeToken(tokenHash: string): Promise<boolean> {
    const res = await this.pool.query(SQL.consumeRuntimeToken, [tokenHash]);
    if (res.rowCount !== 1) return false;
    this.tokenChanges++;
    return true;
  }

  async insertAuditEvent(audit: AuditEvent): Promise<void> {
    await this.transaction((c) => this.appendAudit(c, audit));
  }

  setAuditChain(chain: AuditChain): void {
    this.chain = chain;
  }

  /** Locks the account's chain head (made on first use) for the rest of the transaction. */
  private async lockChainHead(c: PoolClient, account: string): Promise<{ seq: number; hash: string }> {
    const lock = 'SELECT seq, hash FROM audit_chain_heads WHERE account = $1 FOR UPDATE';
    // The head exists but for an account's very first event: one round trip while the lock is held.
    let head = (await c.query<Row>(lock, [account])).rows[0];
    if (!head) {
      await c.query(
        'INSERT INTO audit_chain_heads (account, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (account) DO NOTHING',
        [account, GENESIS_HASH],
      );
      head = (await c.query<Row>(lock, [account])).rows[0] as Row;
    }
    return { seq: Number(head.seq), hash: String(head.hash) };
  }

  /**
   * Appends an event to its account's chain, last thing in the writing transaction: the head row
   * stays locked until commit, so appends of one account (from any instance) take turns, and a
   * rolled-back write leaves the head as it was. Every writer takes the head after its other rows
   * (so no two writers can wait on each other) and as late as it can: the head serializes an
   * account's writes, and it is held only for the append and the commit.
   */
  private async appendAudit(c: PoolClient, audit: AuditEvent): Promise<void> {
    if (!this.chain) throw new Error('audit write before the audit chain was set');
    const account = audit.actorUserId;
    const head = await this.lockChainHead(c, account);
    const seq = head.seq + 1;
    const hash = this.chain.link(audit, account, seq, head.hash);
    await c.query(SQL.insertAudit, chainedAuditParams(audit, account, seq, head.hash, hash));
    await c.query(SET_CHAIN_HEAD, [account, seq, hash]);
  }

  /**
   * True when the account's policy is still at the guard's revision. Read after the chain head is
   * locked: a policy write appends to the same chain, so it has either committed (and is seen here)
   * or waits for this transaction.
   */
  private async policyHolds(c: PoolClient, guard: PolicyGuard | undefined): Promise<boolean> {
    if (!guard) return true;
    const row = (await c.query<Row>(SQL.policyByUser, [guard.userId])).rows[0];
    return (row ? Number(row.revision) : 0) === guard.revision;
  }

  /** A transaction that answers false when `work` throws Lost (rolled back). */
  private async compareAndSet(work: (c: PoolClient) => Promise<void>): Promise<boolean> {
    try {
      await this.transaction(work);
      return true;
    } catch (err) {
      if (err instanceof Lost) return false;
      throw err;
    }
  }

  async auditChain(query: {
    account?: string | undefined;
    after?: { account: string; seq: number } | undefined;
    since?: string | undefined;
    limit: number;
  }): Promise<ChainedAuditEvent[]> {
    const { sql, params } = auditChainQuery(query);
    return (await this.pool.query<Row>(numbered(sql), params)).rows.map(toChainedAuditEvent);
  }

  async chainLegacyAudit(): Promise<number> {
    return this.transaction(async (c) => {
      // One instance at a time (several may start at once on an upgraded database).
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK + 1]);
      const rows = (await c.query<Row>(SQL.unchainedAudit)).rows;
      for (const row of rows) {
        const chain = this.chain;
        if (!chain) throw new Error('audit write before the audit chain was set');
        const audit = toAuditEvent(row);
        const account = audit.actorUserId;
        const head = await this.lockChainHead(c, account);
        const seq = head.seq + 1;
        const hash = chain.link(audit, account, seq, head.hash);
        await c.query(SQL.linkAudit, [account, seq, head.hash, hash, audit.id]);
        await c.query(SET_CHAIN_HEAD, [account, seq, hash]);
      }
      return rows.length;
    });
  }

  async auditChainHeads(): Promise<ChainHead[]> {
    return (await this.pool.query<Row>(SQL.chainHeads)).rows.map(toChainHead);
  }

  async getByokPolicy(userId: string): Promise<ByokPolicyRecord | undefined> {
    const row = await this.one(SQL.policyByUser, [userId]);
    return row ? toByokPolicy(row) : undefined;
  }

  async putByokPolicy(
    userId: string,
    next: ByokPolicyRecord,
    expectedRevision: number,
    audit: AuditEvent,
  ): Promise<boolean> {
    const doc = JSON.stringify(next.policy);
    return this.compareAndSet(async (c) => {
      const res =
        expectedRevision === 0
          ? await c.query(SQL.insertPolicy, [userId, doc, next.revision, next.updatedAt])
          : await c.query(SQL.updatePolicy, [doc, next.revision, next.updatedAt, userId, expectedRevision]);
      if (res.rowCount !== 1) throw new Lost();
      await this.appendAudit(c, audit);
    });
  }

  async findToken(tokenHash: string): Promise<{ token: TokenRecord; user: User } | undefined> {
    const r = await this.one(SQL.tokenByHash, [tokenHash]);
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
    return this.compareAndSet(async (c) => {
      await c.query(SQL.insertWorkspace, [ws.id, ws.userId, ws.name, ws.createdAt]);
      await c.query(SQL.insertConfig, ['workspace', ws.id, ...aiConfigParams(config)]);
      await this.appendAudit(c, audit);
      if (!(await this.policyHolds(c, guard))) throw new Lost();
    });
  }

  async createWorkspaces(
    entries: readonly { workspace: Workspace; config: AiConfigRecord; audit: AuditEvent }[],
  ): Promise<void> {
    // One statement per table for a chunk of rows: each column goes as an array, unnest makes rows.
    const columns = <T>(rows: readonly T[], width: number, of: (row: T) => unknown[]) => {
      const out: unknown[][] = Array.from({ length: width }, () => []);
      for (const row of rows) {
        for (const [i, v] of of(row).entries()) out[i]?.push(v);
      }
      return out;
    };
    const unnest = (types: string[]) => types.map((t, i) => `$${i + 1}::${t}[]`).join(', ');
    const text = (n: number) => Array<string>(n).fill('text');
    await this.transaction(async (c) => {
      for (let at = 0; at < entries.length; at += 5_000) {
        const chunk = entries.slice(at, at + 5_000);
        await c.query(
          `INSERT INTO workspaces (id, user_id, name, created_at) SELECT * FROM unnest(${unnest(text(4))})`,
          columns(chunk, 4, (e) => [
            e.workspace.id,
            e.workspace.userId,
            e.workspace.name,
            e.workspace.createdAt,
          ]),
        );
        await c.query(
          `INSERT INTO ai_configs (owner_kind, owner_id, ${CONFIG_COLUMNS})
           SELECT * FROM unnest(${unnest([...text(10), 'integer', 'text'])})`,
          columns(chunk, 12, (e) => ['workspace', e.workspace.id, ...aiConfigParams(e.config)]),
        );
        // Each account's head is locked once, then its events are linked in order here.
        const chain = this.chain;
        if (!chain) throw new Error('audit write before the audit chain was set');
        const heads = new Map<string, { seq: number; hash: string }>();
        const linked: unknown[][] = [];
        for (const { audit } of chunk) {
          const account = audit.actorUserId;
          let head = heads.get(account);
          if (!head) head = await this.lockChainHead(c, account);
          const seq = head.seq + 1;
          const hash = chain.link(audit, account, seq, head.hash);
          linked.push(chainedAuditParams(audit, account, seq, head.hash, hash));
          heads.set(account, { seq, hash });
        }
        await c.query(
          `INSERT INTO audit_events (${CHAINED_AUDIT_COLUMNS})
           SELECT * FROM unnest(${unnest([...text(8), 'integer', 'text', 'text', 'integer', 'text', 'text'])})`,
          columns(linked, 14, (row) => row),
        );
        for (const [account, head] of heads) {
          await c.query(SET_CHAIN_HEAD, [account, head.seq, head.hash]);
        }
      }
    });
  }

  async getWorkspace(userId: string, workspaceId: string): Promise<Workspace | undefined> {
    const r = await this.one(SQL.workspaceById, [workspaceId, userId]);
    return r ? toWorkspace(r) : undefined;
  }

  async getWorkspaceAiConfig(
    userId: string,
    workspaceId: string,
  ): Promise<{ workspace: Workspace; config: AiConfigRecord } | undefined> {
    const r = await this.one(SQL.workspaceAiConfigById, [workspaceId, userId]);
    return r ? { workspace: toWorkspace(r), config: toAiConfig(r) } : undefined;
  }

  async listWorkspaceAiConfigs(userId: string, page: PageRequest): Promise<Page<WorkspaceAiConfig>> {
    const res = page.after
      ? await this.pool.query<Row>(SQL.workspacePageAfter, [userId, ...page.after, page.limit + 1])
      : await this.pool.query<Row>(SQL.workspacePageFirst, [userId, page.limit + 1]);
    const items = res.rows.map((r) => ({ workspace: toWorkspace(r), config: toAiConfig(r) }));
    return pageOf(items, page.limit, (w) => workspaceKey(w.workspace));
  }

  async findWorkspaceAiConfigs(
    userId: string,
    ids: readonly string[],
    page: PageRequest,
  ): Promise<Page<WorkspaceAiConfig>> {
    const res = await this.pool.query<Row>(SQL.workspaceAiConfigsByIds, [ids]);
    return ownedPage(userId, res.rows, page);
  }

  async deleteWorkspace(userId: string, workspaceId: string, audit: AuditEvent): Promise<boolean> {
    const deleted = await this.compareAndSet(async (c) => {
      const gone = await c.query(SQL.deleteWorkspace, [workspaceId, userId]);
      if (gone.rowCount !== 1) throw new Lost();
      await c.query(SQL.deleteConfig, ['workspace', workspaceId]);
      await c.query(SQL.deleteRuntimeTokens, [workspaceId]);
      await c.query(SQL.deleteBindings, [workspaceId]);
      // The chain head after the rows, as every writer takes them (see appendAudit).
      await this.appendAudit(c, audit);
    });
    if (deleted) this.tokenChanges++;
    return deleted;
  }

  async getAiConfig(owner: ConfigOwner): Promise<AiConfigRecord | undefined> {
    const r = await this.one(SQL.configByOwner, [owner.kind, owner.id]);
    return r ? toAiConfig(r) : undefined;
  }

  async putAiConfig(
    owner: ConfigOwner,
    next: AiConfigRecord,
    expectedRevision: number,
    audit: AuditEvent,
    guard?: PolicyGuard,
  ): Promise<boolean> {
    return this.compareAndSet(async (c) => {
      // Both statements are atomic compare-and-set: a concurrent writer's UPDATE waits for our row
      // lock, then re-checks `revision` and matches nothing; a concurrent INSERT hits the conflict.
      const res =
        expectedRevision === 0
          ? await c.query(INSERT_FIRST_CONFIG, [owner.kind, owner.id, ...aiConfigParams(next)])
          : await c.query(SQL.updateConfig, [
              ...aiConfigParams(next),
              owner.kind,
              owner.id,
              expectedRevision,
            ]);
      if (res.rowCount !== 1) throw new Lost();
      // Then the chain head (see appendAudit); a lost compare-and-set never waited for it.
      await this.appendAudit(c, audit);
      if (!(await this.policyHolds(c, guard))) throw new Lost();
    });
  }

  async listAudit(owner: ConfigOwner, page: PageRequest): Promise<Page<AuditEvent>> {
    const res = page.after
      ? await this.pool.query<Row>(SQL.auditPageAfter, [owner.kind, owner.id, ...page.after, page.limit + 1])
      : await this.pool.query<Row>(SQL.auditPageFirst, [owner.kind, owner.id, page.limit + 1]);
    return pageOf(res.rows.map(toAuditEvent), page.limit, (e) => [e.id]);
  }

  async bindRuntimeKey(fingerprint: string, workspaceId: string, now: string): Promise<void> {
    await this.pool.query(SQL.bindKey, [fingerprint, workspaceId, now]);
  }

  async findGatewayTokenCaller(
    tokenHash: string,
  ): Promise<{ token: TokenRecord; caller: GatewayCaller } | undefined> {
    const r = await this.one(SQL.gatewayTokenCaller, [tokenHash]);
    return r ? { token: toToken(r), caller: toGatewayCaller(r) } : undefined;
  }

  async findKeyCallers(fingerprint: string): Promise<GatewayCaller[]> {
    const res = await this.pool.query<Row>(SQL.keyCallers, [fingerprint]);
    return res.rows.map(toGatewayCaller);
  }

  async spendCredit(userId: string, periodStart: string, limit: number): Promise<boolean> {
    return this.transaction(async (c) => {
      await c.query(SQL.openCredits, [userId, periodStart]);
      // A concurrent spender's UPDATE waits for our row lock and then re-checks `used < limit`.
      const res = await c.query(SQL.spendCredit, [userId, periodStart, limit]);
      return res.rowCount === 1;
    });
  }

  async refundCredit(userId: string, periodStart: string): Promise<void> {
    await this.pool.query(SQL.refundCredit, [userId, periodStart]);
  }

  async creditsUsed(userId: string, periodStart: string): Promise<number> {
    const r = await this.one(SQL.creditsUsed, [userId, periodStart]);
    return r ? Number(r.used) : 0;
  }

  async listEnvelopes(): Promise<StoredEnvelope[]> {
    const configs = (await this.pool.query<Row>(SQL.configEnvelopes)).rows.map((r) => ({
      table: 'ai_configs' as const,
      recordId: `${r.owner_kind}:${r.owner_id}`,
      envelope: {
        ciphertext: String(r.key_ciphertext),
        wrappedDek: String(r.key_wrapped_dek),
        kekId: String(r.key_kek_id),
      },
    }));
    const secrets = (await this.pool.query<Row>(SQL.secretEnvelopes)).rows.map((r) => ({
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
    const res =
      stored.table === 'ai_configs'
        ? await this.pool.query(SQL.rewrapConfig, [
            next.wrappedDek,
            next.kekId,
            kind,
            id,
            stored.envelope.ciphertext,
            stored.envelope.wrappedDek,
          ])
        : await this.pool.query(SQL.rewrapSecret, [
            next.wrappedDek,
            next.kekId,
            id,
            stored.envelope.wrappedDek,
          ]);
    return res.rowCount === 1;
  }

  async getServiceSecret(name: string): Promise<Envelope | undefined> {
    const r = await this.one(SQL.getSecret, [name]);
    return r
      ? { ciphertext: String(r.ciphertext), wrappedDek: String(r.wrapped_dek), kekId: String(r.kek_id) }
      : undefined;
  }

  async insertServiceSecret(name: string, envelope: Envelope, now: string): Promise<Envelope> {
    await this.pool.query(SQL.insertSecret, [
      name,
      envelope.ciphertext,
      envelope.wrappedDek,
      envelope.kekId,
      now,
    ]);
    return (await this.getServiceSecret(name)) as Envelope;
  }
}
