import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { canaryKey, type Harness, startHarness } from '../../../test/support/harness.js';
import { main } from '../cli/main.js';
import type { SqliteStorage } from '../storage/sqlite.js';

// The tamper-evident audit export (issue 18): the chain as the API exports it, and `rigbox audit
// verify` against a store whose events were deleted, reordered or edited behind the service's back.
// Runs on SQLite and on PostgreSQL.

let h: Harness;
let alice: string;
let masterKey: string;
let canary: string;

beforeEach(async () => {
  masterKey = randomBytes(32).toString('hex');
  h = await startHarness({ env: { RIGBOX_MASTER_KEY: masterKey } });
  alice = await h.token('alice');
  canary = canaryKey('sk-proj-');
});
afterEach(async () => {
  expect(h.logs.text).not.toContain(canary);
  await h.close();
});

async function call(method: string, url: string, body?: unknown, token = alice) {
  const res = await h.service.app.inject({
    method: method as 'GET',
    url,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
  expect(res.body).not.toContain(canary);
  return res;
}

/** Some history for alice: a workspace, key set and rotated, a policy, a refusal, a delete. */
async function history() {
  const ws = (await call('POST', '/api/workspaces', { name: 'audited' })).json().id as string;
  await call('PUT', `/api/workspaces/${ws}/ai-config`, { mode: 'byok', provider: 'openai', api_key: canary });
  await call('PUT', `/api/workspaces/${ws}/ai-config`, {
    mode: 'byok',
    provider: 'openai',
    api_key: canaryKey('sk-proj-'),
  });
  await call('PUT', '/api/users/me/byok-policy', { allowed_providers: ['openai'] });
  expect(
    (await call('PUT', '/api/users/me/ai-defaults', { mode: 'managed', provider: 'google' })).statusCode,
  ).toBe(422);
  await call('DELETE', `/api/workspaces/${ws}`);
  return ws;
}

/** Runs a statement straight against the store, as someone with database access could. */
async function tamper(sql: string, params: unknown[] = []) {
  if (h.databaseUrl) {
    const c = new Client({ connectionString: h.databaseUrl });
    await c.connect();
    try {
      let n = 0;
      await c.query(
        sql.replace(/\?/g, () => `$${++n}`),
        params,
      );
    } finally {
      await c.end();
    }
  } else {
    const db = new Database((h.service.storage as SqliteStorage).file);
    try {
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
  }
}

const aliceId = async () => (await h.service.storage.findUserByName('alice'))!.id;

/** `rigbox audit verify` on the harness's store, in process: its exit code and what it printed. */
async function verify(): Promise<{ code: number; out: string }> {
  const saved = {
    url: process.env.RIGBOX_DATABASE_URL,
    key: process.env.RIGBOX_MASTER_KEY,
    code: process.exitCode,
  };
  let out = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    if (h.databaseUrl) process.env.RIGBOX_DATABASE_URL = h.databaseUrl;
    else delete process.env.RIGBOX_DATABASE_URL;
    process.env.RIGBOX_MASTER_KEY = masterKey;
    process.exitCode = 0;
    await main(['audit', 'verify', '--data-dir', h.dataDir]);
    return { code: Number(process.exitCode ?? 0), out };
  } finally {
    spy.mockRestore();
    process.exitCode = saved.code;
    for (const [name, value] of [
      ['RIGBOX_DATABASE_URL', saved.url],
      ['RIGBOX_MASTER_KEY', saved.key],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe('the audit export', () => {
  it('serves NDJSON, oldest first, each event linked to the one before, no key material', async () => {
    await history();
    const res = await call('GET', '/api/users/me/audit/export');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const events = res.body
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(events.map((e) => e.action)).toEqual([
      'workspace.created',
      'ai_config.updated',
      'ai_config.updated',
      'byok_policy.updated',
      'ai_config.refused_by_policy',
      'workspace.deleted',
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events[0].prev_hash).toBe('0'.repeat(64));
    for (let i = 1; i < events.length; i++) expect(events[i].prev_hash).toBe(events[i - 1].hash);
    expect(events[1].key_event).toBe('set');
    expect(events[2].key_event).toBe('rotated');
    expect(res.body).not.toMatch(/sk-proj-|ciphertext|wrapped/);
    // Another account sees only its own chain.
    const bob = await h.token('bob');
    expect((await call('GET', '/api/users/me/audit/export', undefined, bob)).body).toBe('');
  });

  it('continues from a cursor or a time, and names a bad since', async () => {
    await history();
    const first = await call('GET', '/api/users/me/audit/export?limit=4');
    expect(first.body.trim().split('\n')).toHaveLength(4);
    const cursor = first.headers['rigbox-next-cursor'] as string;
    expect(first.headers.link).toContain(`since=${cursor}`);
    const rest = await call('GET', `/api/users/me/audit/export?since=${cursor}`);
    const seqs = rest.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).seq);
    expect(seqs).toEqual([5, 6]);
    expect(rest.headers.link).toBeUndefined();
    // Polling at the end: nothing new, the same place to continue from.
    const end = rest.headers['rigbox-next-cursor'] as string;
    const idle = await call('GET', `/api/users/me/audit/export?since=${end}`);
    expect(idle.body).toBe('');
    expect(idle.headers['rigbox-next-cursor']).toBe(end);
    expect((await call('GET', '/api/users/me/audit/export?since=2999-01-01T00:00:00Z')).body).toBe('');
    expect(
      (await call('GET', '/api/users/me/audit/export?since=2000-01-01')).body.trim().split('\n'),
    ).toHaveLength(6);
    const bad = await call('GET', '/api/users/me/audit/export?since=yesterday');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ field: 'cursor' });
    // Another account's cursor is not one of this list's.
    const foreign = await call(
      'GET',
      `/api/users/me/audit/export?since=${cursor}`,
      undefined,
      await h.token('bob'),
    );
    expect(foreign.statusCode).toBe(400);
  });
});

describe('rigbox audit verify', () => {
  it('passes on an untouched store', async () => {
    await history();
    await call('POST', '/api/workspaces', { name: 'bob-ws' }, await h.token('bob'));
    const { code, out } = await verify();
    expect(out).toMatch(/audit chain intact: 7 events in 2 account chains/);
    expect(code).toBe(0);
  });

  it('names the link when an event is edited', async () => {
    await history();
    const account = await aliceId();
    await tamper(`UPDATE audit_events SET actor_name = 'mallory' WHERE chain_account = ? AND chain_seq = 3`, [
      account,
    ]);
    const { code, out } = await verify();
    expect(code).toBe(1);
    expect(out).toMatch(
      new RegExp(`broken at account ${account}, link #3 \\(event evt_[0-9a-f]+\\): hash does not match`),
    );
  });

  it('names the link when an event is deleted', async () => {
    await history();
    const account = await aliceId();
    await tamper('DELETE FROM audit_events WHERE chain_account = ? AND chain_seq = 2', [account]);
    const { code, out } = await verify();
    expect(code).toBe(1);
    expect(out).toMatch(/link #2 .*expected event #2, found #3: an event was deleted/);
  });

  it('names the link when events are reordered', async () => {
    await history();
    const account = await aliceId();
    // Swap the places of events 2 and 3 (through a free number: the order is unique).
    await tamper('UPDATE audit_events SET chain_seq = 1000 WHERE chain_account = ? AND chain_seq = 2', [
      account,
    ]);
    await tamper('UPDATE audit_events SET chain_seq = 2 WHERE chain_account = ? AND chain_seq = 3', [
      account,
    ]);
    await tamper('UPDATE audit_events SET chain_seq = 3 WHERE chain_account = ? AND chain_seq = 1000', [
      account,
    ]);
    const { code, out } = await verify();
    expect(code).toBe(1);
    expect(out).toMatch(/link #2 .*prev_hash is not the hash of the event before it/);
  });

  it('names the end when the newest events are deleted', async () => {
    await history();
    const account = await aliceId();
    await tamper('DELETE FROM audit_events WHERE chain_account = ? AND chain_seq >= 5', [account]);
    const { code, out } = await verify();
    expect(code).toBe(1);
    expect(out).toMatch(/link #5: the chain ends at #4 but its head says #6/);
  });

  it('names the link when an event is forged with a recomputed-looking chain but no secret', async () => {
    await history();
    const account = await aliceId();
    const row = (await h.service.storage.auditChain({ account, limit: 100 })).at(-1)!;
    await tamper(
      `INSERT INTO audit_events (id, owner_kind, owner_id, actor_user_id, actor_name, action, changes, key_event, revision, at, chain_account, chain_seq, prev_hash, hash)
       VALUES (?, 'account', ?, ?, 'alice', 'byok_policy.updated', '{}', NULL, NULL, ?, ?, 7, ?, ?)`,
      ['evt_forged', account, account, new Date().toISOString(), account, row.hash, 'ab'.repeat(32)],
    );
    await tamper('UPDATE audit_chain_heads SET seq = 7, hash = ? WHERE account = ?', [
      'ab'.repeat(32),
      account,
    ]);
    const { code, out } = await verify();
    expect(code).toBe(1);
    expect(out).toMatch(/link #7 \(event evt_forged\): hash does not match/);
  });
});

describe('an upgraded store', () => {
  it('links the events stored before the chain existed, oldest first, and verify covers them', async () => {
    await history();
    const account = await aliceId();
    // Two events as a version without the chain wrote them: no chain columns.
    await tamper(
      `INSERT INTO audit_events (id, owner_kind, owner_id, actor_user_id, actor_name, action, changes, key_event, revision, at)
       VALUES (?, 'workspace', 'ws_old', ?, 'alice', 'ai_config.updated', '{"model":["a","b"]}', NULL, 3, ?),
              (?, 'workspace', 'ws_old', ?, 'alice', 'workspace.created', '{}', NULL, 1, ?)`,
      [
        'evt_legacy2',
        account,
        '2020-01-02T00:00:00.000Z',
        'evt_legacy1',
        account,
        '2020-01-01T00:00:00.000Z',
      ],
    );
    expect(await h.service.storage.chainLegacyAudit()).toBe(2);
    expect(await h.service.storage.chainLegacyAudit()).toBe(0);
    const chained = await h.service.storage.auditChain({ account, limit: 100 });
    expect(chained.slice(-2).map((e) => [e.id, e.seq])).toEqual([
      ['evt_legacy1', 7],
      ['evt_legacy2', 8],
    ]);
    expect((await verify()).code).toBe(0);
    await tamper('DELETE FROM audit_events WHERE id = ?', ['evt_legacy1']);
    expect((await verify()).out).toMatch(/link #7 .*expected event #7, found #8/);
  });
});
