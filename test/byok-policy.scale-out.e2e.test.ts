import { Client } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type PostgresEngine, startPostgres } from './engines/postgres.js';
import { apiClient, newMasterKey } from './support/api.js';
import { canaryKey } from './support/harness.js';
import { RigboxServer, rigboxAsync } from './support/rigbox-server.js';

/**
 * The BYOK policy and the audit chain across two real `rigbox serve` processes on one PostgreSQL
 * database (issue 18): a policy changed through one instance binds the other's very next write, and
 * writes flowing through both at once, while the policy flips from report to enforce, leave one
 * unbroken chain per account that `rigbox audit verify` accepts, and that breaks when a row is edited.
 */

const keys: string[] = [];
const freshKey = () => {
  const key = canaryKey('sk-proj-');
  keys.push(key);
  return key;
};

let pg: PostgresEngine | undefined;
let a: RigboxServer;
let b: RigboxServer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  pg = await startPostgres();
  env = { RIGBOX_DATABASE_URL: pg.url, RIGBOX_MASTER_KEY: newMasterKey() };
  a = new RigboxServer(undefined, env);
  b = new RigboxServer(undefined, env);
  await Promise.all([a.start(), b.start()]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  try {
    const logs = `${a?.output}\n${b?.output}`;
    for (const key of keys) expect(logs).not.toContain(key);
  } finally {
    await Promise.all([a?.dispose(), b?.dispose()]);
    await pg?.stop();
  }
});

const verify = () => rigboxAsync(['audit', 'verify'], { ...a.allEnv });

it('a policy changed on one instance is enforced by the other on its next write', async () => {
  const token = a.token('alice');
  const A = apiClient(() => a.url, token);
  const B = apiClient(() => b.url, token);
  const ws = await A('POST', '/api/workspaces', {
    name: 'shared',
    ai_config: { mode: 'byok', provider: 'openai', api_key: freshKey(), model: 'gpt-4o' },
  });
  expect(ws.status).toBe(201);
  const id = ws.body.id as string;
  const set = await A('PUT', '/api/users/me/byok-policy', { allowed_models: { openai: ['gpt-4o'] } });
  expect(set.status).toBe(200);
  const refused = await B('PUT', `/api/workspaces/${id}/ai-config`, {
    mode: 'byok',
    provider: 'openai',
    model: 'gpt-4.1',
  });
  expect(refused.status).toBe(422);
  expect(refused.body).toMatchObject({ code: 'policy_violation', rule: 'allowed_models', field: 'model' });
  const loosened = await B('PUT', '/api/users/me/byok-policy', {}, { 'if-match': set.headers.get('etag')! });
  expect(loosened.status).toBe(200);
  expect(
    (
      await A('PUT', `/api/workspaces/${id}/ai-config`, {
        mode: 'byok',
        provider: 'openai',
        model: 'gpt-4.1',
      })
    ).status,
  ).toBe(200);
});

it('writes through both instances while the policy flips report to enforce: one chain, in commit order, verified', async () => {
  const token = b.token('carol');
  const A = apiClient(() => a.url, token);
  const B = apiClient(() => b.url, token);
  await A('PUT', '/api/users/me/byok-policy', {
    allowed_models: { openai: ['gpt-4o'] },
    enforcement: 'report',
  });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const created = await (i % 2 ? B : A)('POST', '/api/workspaces', {
      name: `w${i}`,
      ai_config: { mode: 'byok', provider: 'openai', api_key: freshKey(), model: 'gpt-4o' },
    });
    ids.push(created.body.id);
  }
  let stop = false;
  const statuses: number[] = [];
  const writer = async (client: typeof A, id: string, n: number) => {
    for (let i = 0; !stop && i < 300; i++) {
      const body =
        i % 3 === 0
          ? { mode: 'byok', provider: 'openai', api_key: freshKey(), model: 'gpt-4o' }
          : { mode: 'byok', provider: 'openai', model: (i + n) % 2 ? 'gpt-4o' : 'gpt-4.1' };
      statuses.push((await client('PUT', `/api/workspaces/${id}/ai-config`, body)).status);
    }
  };
  const writers = ids.map((id, n) => writer(n % 2 ? B : A, id, n));
  await new Promise((r) => setTimeout(r, 300));
  const flip = await B('PUT', '/api/users/me/byok-policy', {
    allowed_models: { openai: ['gpt-4o'] },
    enforcement: 'enforce',
  });
  expect(flip.status).toBe(200);
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(writers);
  expect(statuses.filter((s) => s !== 200 && s !== 422)).toEqual([]);
  expect(statuses).toContain(422);

  // The whole export, a page at a time through both instances.
  const events: {
    seq: number;
    action: string;
    changes: Record<string, unknown[]>;
    prev_hash: string;
    hash: string;
  }[] = [];
  let since: string | undefined;
  for (let page = 0; ; page++) {
    const res = await fetch(
      `${(page % 2 ? a : b).url}/api/users/me/audit/export?limit=200${since ? `&since=${since}` : ''}`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const k of keys) expect(text).not.toContain(k);
    const lines = text.split('\n').filter(Boolean);
    events.push(...lines.map((l) => JSON.parse(l)));
    since = res.headers.get('rigbox-next-cursor') ?? since;
    if (!res.headers.get('link')) break;
  }
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  for (let i = 1; i < events.length; i++) expect(events[i]!.prev_hash).toBe(events[i - 1]!.hash);
  const flipAt = events.findIndex(
    (e) =>
      e.action === 'byok_policy.updated' &&
      (e.changes.enforcement as unknown[] | undefined)?.[1] === 'enforce',
  );
  expect(flipAt).toBeGreaterThan(0);
  expect(events.slice(0, flipAt).some((e) => e.changes.policy_violations)).toBe(true);
  const after = events.slice(flipAt + 1);
  expect(after.some((e) => e.changes.policy_violations)).toBe(false);
  for (const e of after.filter((x) => x.action === 'ai_config.updated')) {
    expect((e.changes.model as unknown[] | undefined)?.[1]).not.toBe('gpt-4.1');
  }
  expect(after.some((e) => e.action === 'ai_config.refused_by_policy')).toBe(true);

  const intact = await verify();
  expect(intact.stderr).toMatch(/audit chain intact/);
  expect(intact.status).toBe(0);

  // An edit behind the service's back is found and named.
  const sql = new Client({ connectionString: pg!.url });
  await sql.connect();
  try {
    await sql.query(
      `UPDATE audit_events SET action = 'workspace.renamed' WHERE chain_seq = 3 AND chain_account =
         (SELECT chain_account FROM audit_events WHERE owner_id = $1 LIMIT 1)`,
      [ids[0]],
    );
  } finally {
    await sql.end();
  }
  const broken = await verify();
  expect(broken.status).toBe(1);
  expect(broken.stderr).toMatch(
    /audit chain broken at account usr_[0-9a-f]+, link #3 \(event evt_[0-9a-f]+\): hash does not match/,
  );
  for (const k of keys) expect(`${intact.stderr}${broken.stderr}`).not.toContain(k);
});
