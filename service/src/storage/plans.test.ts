import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshStore, type TestStore } from '../../../test/support/harness.js';
import { AuditChain } from '../audit/chain.js';
import { newId } from '../ids.js';
import { openStorage } from './open.js';
import {
  auditChainQuery,
  KEYED_STATEMENTS,
  type KeyedStatement,
  numbered,
  WORKSPACE_AI_CONFIGS_BY_IDS,
} from './rows.js';
import type { SqliteStorage } from './sqlite.js';
import type { AiConfigRecord, AuditEvent, Storage, Workspace } from './types.js';

// The query plans of every statement whose cost must not grow with the account (reads by key, pages,
// the runtime's and the gateway's lookups), on the backend the test project names: each must reach
// its rows through an index condition, never by reading a table or an index whole, and a page must
// come off its index in order, without a sort. A change that brings back a scan fails here.

let store: TestStore;
let storage: Storage;
const now = '2026-01-02T03:04:05.000Z';
let alice: string;
let ids: string[];

const config: AiConfigRecord = {
  mode: 'managed',
  provider: 'anthropic',
  model: null,
  key: null,
  keyFingerprint: null,
  keyUpdatedAt: null,
  revision: 1,
  updatedAt: now,
};

beforeAll(async () => {
  store = await freshStore();
  storage = await openStorage(store);
  storage.setAuditChain(new AuditChain(randomBytes(32)));
  alice = (await storage.ensureUser('alice', now)).id;
  const bob = (await storage.ensureUser('bob', now)).id;
  for (let i = 0; i < 200; i++) await storage.ensureUser(`user-${i}`, now);
  // Many users, two accounts with workspaces, one much larger, and tokens and key bindings for some of the workspaces: enough
  // rows that no plan is an accident of empty tables.
  const entries = Array.from({ length: 2_000 }, (_, i) => {
    const workspace: Workspace = {
      id: newId('ws'),
      userId: i % 10 === 0 ? bob : alice,
      name: `w${i}`,
      createdAt: new Date(Date.parse(now) + i * 1000).toISOString(),
    };
    const audit: AuditEvent = {
      id: newId('aud'),
      ownerKind: 'workspace',
      ownerId: workspace.id,
      actorUserId: workspace.userId,
      actorName: 'someone',
      action: 'workspace.created',
      changes: {},
      keyEvent: null,
      revision: 1,
      at: workspace.createdAt,
    };
    return { workspace, config, audit };
  });
  await storage.createWorkspaces(entries);
  ids = entries.filter((e) => e.workspace.userId === alice).map((e) => e.workspace.id);
  for (const [i, id] of ids.slice(0, 300).entries()) {
    await storage.insertToken({
      id: newId('tok'),
      userId: alice,
      tokenHash: `hash-${i}`,
      kind: i % 2 ? 'gateway' : 'runtime',
      workspaceId: id,
      expiresAt: null,
      createdAt: now,
    });
    await storage.bindRuntimeKey(`fp-${i % 50}`, id, now);
  }
  if (store.databaseUrl) {
    // What autovacuum does to a table that grew; the statistics the planner works from.
    const client = new Client({ connectionString: store.databaseUrl });
    await client.connect();
    await client.query('ANALYZE');
    await client.end();
  }
});
afterAll(async () => {
  await storage?.close();
  await store?.remove();
});

/**
 * The backend's query plan of a keyed statement (or of `sql`, with `?` placeholders), one step a
 * line, read on a connection of its own to the same store. PostgreSQL's is EXPLAIN's, with
 * whole-table reads priced out as they are on tables large enough for an index to matter (a test's
 * tables are small, and there PostgreSQL rightly prefers to read them whole and hash or merge them):
 * a statement that no index serves still shows its Seq Scan, or an Index Scan without Index Cond.
 */
async function explain(statement: KeyedStatement | { sql: string }, params: unknown[]): Promise<string> {
  const ids = statement === 'workspaceAiConfigsByIds';
  const sql = typeof statement !== 'string' ? statement.sql : ids ? undefined : KEYED_STATEMENTS[statement];
  if (storage.kind === 'sqlite') {
    const db = new Database((storage as SqliteStorage).file, { readonly: true, fileMustExist: true });
    try {
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${sql ?? WORKSPACE_AI_CONFIGS_BY_IDS.sqlite}`)
        .all(...params) as { detail: string }[];
      return plan.map((step) => step.detail).join('\n');
    } finally {
      db.close();
    }
  }
  const client = new Client({ connectionString: store.databaseUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    for (const setting of ['enable_seqscan', 'enable_hashjoin', 'enable_mergejoin']) {
      await client.query(`SET LOCAL ${setting} = off`);
    }
    const res = await client.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN ${sql === undefined ? WORKSPACE_AI_CONFIGS_BY_IDS.postgres : numbered(sql)}`,
      params,
    );
    return res.rows.map((r) => r['QUERY PLAN']).join('\n');
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    await client.end();
  }
}

/** SQLite: every table is a SEARCH (an index with a condition), and no step sorts. */
function checkSqlite(plan: string) {
  for (const step of plan.split('\n')) {
    expect(step, plan).not.toMatch(/\bSCAN (?!json_each VIRTUAL TABLE)/);
    expect(step, plan).not.toMatch(/TEMP B-TREE/);
  }
}

/** PostgreSQL: no Seq Scan, no Sort, and every index scan has an Index Cond (not a walk of the index). */
function checkPostgres(plan: string) {
  expect(plan).not.toMatch(/Seq Scan|Sort/);
  const lines = plan.split('\n');
  lines.forEach((line, i) => {
    if (!/Index (Only )?Scan/.test(line)) return;
    const details: string[] = [];
    for (let j = i + 1; j < lines.length && !/->/.test(lines[j] as string); j++)
      details.push(lines[j] as string);
    expect(details.join('\n'), `${line}\n in\n${plan}`).toMatch(/Index Cond:/);
  });
}

type Case = {
  statement: KeyedStatement;
  params: () => unknown[];
  /** What the plan must say on each backend, beyond the general checks. */
  sqlite: RegExp[];
  postgres: RegExp[];
};

const cases: Case[] = [
  {
    statement: 'workspaceById',
    params: () => [ids[7], alice],
    sqlite: [/SEARCH workspaces USING INDEX sqlite_autoindex_workspaces_1 \(id=\?\)/],
    postgres: [/Index Scan using workspaces_pkey/],
  },
  {
    statement: 'workspaceAiConfigById',
    params: () => [ids[7], alice],
    sqlite: [/SEARCH w USING INDEX sqlite_autoindex_workspaces_1 \(id=\?\)/],
    postgres: [/Index Scan using workspaces_pkey on workspaces w/, /Index Scan using ai_configs_pkey/],
  },
  {
    statement: 'workspaceAiConfigsByIds',
    params: () => {
      const some = ids.slice(100, 200);
      return [storage.kind === 'sqlite' ? JSON.stringify(some) : some];
    },
    sqlite: [/SEARCH w USING INDEX sqlite_autoindex_workspaces_1 \(id=\?\)/],
    postgres: [/Index Scan using workspaces_pkey on workspaces w .*\n\s+Index Cond: \(id = ANY/],
  },
  {
    statement: 'workspacePageFirst',
    params: () => [alice, 101],
    sqlite: [/SEARCH w USING INDEX workspaces_by_user_page \(user_id=\?\)/],
    postgres: [/Limit[\s\S]*Index Scan using workspaces_by_user_page on workspaces w/],
  },
  {
    statement: 'workspacePageAfter',
    params: () => [alice, '2026-01-02T03:20:00.000Z', ids[500], 101],
    sqlite: [/SEARCH w USING INDEX workspaces_by_user_page \(user_id=\? AND \(created_at,id\)>\(\?,\?\)\)/],
    postgres: [/Index Cond: \(\(user_id = .*\) AND \(ROW\(created_at, id\) > ROW\(/],
  },
  {
    statement: 'auditPageFirst',
    params: () => ['workspace', ids[7], 101],
    sqlite: [/SEARCH audit_events USING INDEX audit_by_owner \(owner_kind=\? AND owner_id=\?\)/],
    postgres: [/Index Scan Backward using audit_by_owner/],
  },
  {
    statement: 'auditPageAfter',
    params: () => ['workspace', ids[7], 'aud_zzz', 101],
    sqlite: [/audit_by_owner \(owner_kind=\? AND owner_id=\? AND id<\?\)/],
    postgres: [/Index Scan Backward using audit_by_owner[\s\S]*id < /],
  },
  {
    statement: 'configByOwner',
    params: () => ['workspace', ids[7]],
    sqlite: [/sqlite_autoindex_ai_configs_1 \(owner_kind=\? AND owner_id=\?\)/],
    postgres: [/Index Scan using ai_configs_pkey/],
  },
  {
    statement: 'tokenByHash',
    params: () => ['hash-7'],
    sqlite: [/SEARCH t USING INDEX sqlite_autoindex_api_tokens_2 \(token_hash=\?\)/],
    postgres: [/Index Scan using api_tokens_token_hash_key/],
  },
  {
    statement: 'gatewayTokenCaller',
    params: () => ['hash-7'],
    sqlite: [/SEARCH t USING INDEX sqlite_autoindex_api_tokens_2 \(token_hash=\?\)/],
    postgres: [/Index Scan using api_tokens_token_hash_key/, /Index Scan using ai_configs_pkey/],
  },
  {
    statement: 'keyCallers',
    params: () => ['fp-7'],
    sqlite: [/runtime_key_bindings_1 \(fingerprint=\?\)/],
    postgres: [/runtime_key_bindings_pkey.*\n\s+Index Cond: \(fingerprint = /],
  },
  {
    statement: 'deleteWorkspace',
    params: () => [ids[7], alice],
    sqlite: [/sqlite_autoindex_workspaces_1 \(id=\?\)/],
    postgres: [/Index Scan using workspaces_pkey/],
  },
  {
    statement: 'deleteConfig',
    params: () => ['workspace', ids[7]],
    sqlite: [/sqlite_autoindex_ai_configs_1/],
    postgres: [/Index Scan using ai_configs_pkey/],
  },
  {
    statement: 'deleteRuntimeTokens',
    params: () => [ids[7]],
    sqlite: [/api_tokens_by_workspace \(workspace_id=\?\)/],
    postgres: [/api_tokens_by_workspace/],
  },
  {
    statement: 'deleteBindings',
    params: () => [ids[7]],
    sqlite: [/runtime_key_bindings_by_workspace \(workspace_id=\?\)/],
    postgres: [/runtime_key_bindings_by_workspace/],
  },
];

it.each(cases)('$statement reads through an index condition, with no scan or sort', async (c) => {
  const plan = await explain(c.statement, c.params());
  if (storage.kind === 'sqlite') checkSqlite(plan);
  else checkPostgres(plan);
  for (const expected of storage.kind === 'sqlite' ? c.sqlite : c.postgres) expect(plan).toMatch(expected);
});

it('catches a scan: the checks fail on a plan that reads a table whole', () => {
  expect(() => checkSqlite('SCAN workspaces')).toThrow();
  expect(() => checkSqlite('SEARCH w USING INDEX x (user_id=?)\nUSE TEMP B-TREE FOR ORDER BY')).toThrow();
  expect(() => checkPostgres('Seq Scan on workspaces  (cost=0.00..1.00 rows=1 width=1)')).toThrow();
  expect(() =>
    checkPostgres(
      'Merge Join\n  ->  Index Scan using ai_configs_pkey on ai_configs c\n  ->  Index Scan using x on y\n        Index Cond: (a = 1)',
    ),
  ).toThrow();
});

// The audit export reads an account's chain a page at a time, from the start or after a cursor.
const exportPages = [
  { page: 'the first page', query: () => auditChainQuery({ account: alice, limit: 101 }) },
  {
    page: 'a page after a cursor',
    query: () => auditChainQuery({ account: alice, after: { account: alice, seq: 500 }, limit: 101 }),
  },
];

it.each(exportPages)('the audit export reads $page off the chain index, with no scan or sort', async (c) => {
  const { sql, params } = c.query();
  const plan = await explain({ sql }, params);
  if (storage.kind === 'sqlite') {
    checkSqlite(plan);
    expect(plan).toMatch(/SEARCH audit_events USING INDEX audit_chain_order \(chain_account=\?/);
  } else {
    checkPostgres(plan);
    expect(plan).toMatch(/Index Scan using audit_chain_order on audit_events/);
  }
});
