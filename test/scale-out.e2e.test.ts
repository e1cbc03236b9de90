import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentPeriod, PLAN_CREDITS } from '../service/src/gateway/credits.js';
import { type PostgresEngine, startPostgres } from './engines/postgres.js';
import { apiClient, gatewayChat, newMasterKey, runtimeEnv } from './support/api.js';
import { canaryKey } from './support/harness.js';
import { RigboxServer } from './support/rigbox-server.js';
import { UpstreamStandIn } from './support/upstream-standin.js';

/**
 * Scale-out (storage): two real `rigbox serve` processes, A and B, on ONE
 * PostgreSQL database with the same master key. Nothing is shared between them but the database,
 * so whatever one instance writes, the other must see on its very next request: tokens, mode
 * switches, runtime and gateway tokens, managed credits, and the optimistic-concurrency revision.
 */

const platformKey = canaryKey('sk-proj-');
const workspaceKeys: string[] = [];
const freshKey = () => {
  const key = canaryKey('sk-proj-');
  workspaceKeys.push(key);
  return key;
};

const upstream = new UpstreamStandIn();
let pg: PostgresEngine | undefined;
let sql: Client | undefined;
let a: RigboxServer;
let b: RigboxServer;

beforeAll(async () => {
  [pg] = await Promise.all([startPostgres(), upstream.start()]);
  const env = {
    RIGBOX_DATABASE_URL: pg.url,
    RIGBOX_MASTER_KEY: newMasterKey(),
    RIGBOX_UPSTREAM_OPENAI: upstream.url,
    RIGBOX_PLATFORM_KEY_OPENAI: platformKey,
  };
  a = new RigboxServer(undefined, env);
  b = new RigboxServer(undefined, env);
  // Started at once on an empty database: one applies the migrations, the other waits on the lock.
  await Promise.all([a.start(), b.start()]);
  sql = new Client({ connectionString: pg.url });
  sql.on('error', () => {});
  await sql.connect();
});

afterAll(async () => {
  await sql?.end();
  await Promise.all([a?.stop(), b?.stop()]);
  try {
    const logs = `${a?.output}\n${b?.output}`;
    for (const key of [platformKey, ...workspaceKeys]) expect(logs).not.toContain(key);
  } finally {
    await Promise.all([a?.dispose(), b?.dispose()]);
    await pg?.stop();
    await upstream.stop();
  }
});

/** The stand-in's record of the one call whose message carried `marker`. */
function upstreamCall(marker: string) {
  const calls = upstream.calls.filter((c) => JSON.stringify(c.body).includes(marker));
  expect(calls, `upstream calls carrying ${marker}`).toHaveLength(1);
  return calls[0]!;
}

describe('two rigbox serve instances on one PostgreSQL database', () => {
  it('both report PostgreSQL storage', async () => {
    for (const server of [a, b]) {
      expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({
        status: 'ok',
        storage: 'postgres',
      });
    }
    expect(a.url).not.toBe(b.url);
  });

  it("a token created with instance A's CLI works on B (and B's on A); ownership holds on both", async () => {
    const fromA = a.token('alice');
    const onB = apiClient(() => b.url, fromA);
    const created = await onB('POST', '/api/workspaces', {
      name: 'shared',
      ai_config: { mode: 'managed', provider: 'openai' },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;

    const fromB = b.token('alice');
    const onA = apiClient(() => a.url, fromB);
    expect((await onA('GET', `/api/workspaces/${id}`)).body).toMatchObject({ id, name: 'shared' });
    expect((await onA('GET', '/api/workspaces')).body.workspaces.map((w: { id: string }) => w.id)).toEqual([
      id,
    ]);

    // Another user, made through B, sees none of it through A.
    const mallory = apiClient(() => a.url, b.token('mallory'));
    expect((await mallory('GET', `/api/workspaces/${id}`)).status).toBe(404);
    expect((await mallory('GET', '/api/workspaces')).body.workspaces).toEqual([]);
    // And an unknown token is refused by both.
    for (const server of [a, b]) {
      expect((await apiClient(() => server.url, 'rbx_unknown')('GET', '/api/workspaces')).status).toBe(401);
    }
  });

  it('runtime and gateway tokens minted on one instance work on the other', async () => {
    const token = a.token('ravi');
    const A = apiClient(() => a.url, token);
    const B = apiClient(() => b.url, token);
    const key = freshKey();
    const ws = (
      await A('POST', '/api/workspaces', {
        name: 'rt',
        ai_config: { mode: 'byok', provider: 'openai', api_key: key },
      })
    ).body.id as string;

    // Runtime token minted on A, env fetched from B (which mints the gateway token), and back.
    const viaB = await runtimeEnv(A, b.url, ws);
    expect(viaB.status).toBe(200);
    expect(viaB.env.OPENAI_API_KEY).toBe(key);
    expect(viaB.env.OPENAI_BASE_URL).toBe(`${b.url}/gateway/openai/w/${ws}/v1`);
    const viaA = await runtimeEnv(B, a.url, ws);
    expect(viaA.status).toBe(200);
    expect(viaA.env.OPENAI_API_KEY).toBe(key);

    // Each gateway token, and the byok key itself, works on both instances.
    for (const credential of [viaB.env.RIGBOX_GATEWAY_TOKEN!, viaA.env.RIGBOX_GATEWAY_TOKEN!, key]) {
      for (const server of [a, b]) {
        const marker = randomUUID();
        const res = await gatewayChat(server.url, ws, credential, marker);
        expect(res.status, res.text).toBe(200);
        expect(upstreamCall(marker).key).toBe(key);
      }
    }
  });

  it('a mode switch made through one instance is used by the gateway on the other on the very next call', async () => {
    const token = a.token('maya');
    const api = { a: apiClient(() => a.url, token), b: apiClient(() => b.url, token) };
    let key = freshKey();
    const ws = (
      await api.a('POST', '/api/workspaces', {
        name: 'switch',
        ai_config: { mode: 'byok', provider: 'openai', api_key: key },
      })
    ).body.id as string;
    const { env } = await runtimeEnv(api.a, b.url, ws);
    const gatewayToken = env.RIGBOX_GATEWAY_TOKEN!;
    const credits = async () => (await api.b('GET', '/api/users/me/credits')).body.used as number;

    let managedCalls = 0;
    const usedBefore = await credits();
    for (let i = 0; i < 8; i++) {
      // Writes alternate between A and B; the gateway call goes to the other one, right after.
      const [writer, reader] = i % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const);
      const managed = i % 2 === 0;
      if (!managed) key = freshKey();
      const put = await api[writer](
        'PUT',
        `/api/workspaces/${ws}/ai-config`,
        managed
          ? { mode: 'managed', provider: 'openai' }
          : { mode: 'byok', provider: 'openai', api_key: key },
      );
      expect(put.status).toBe(200);
      expect(put.body.mode).toBe(managed ? 'managed' : 'byok');

      const marker = randomUUID();
      const res = await gatewayChat((reader === 'a' ? a : b).url, ws, gatewayToken, marker);
      expect(res.status, res.text).toBe(200);
      expect(res.mode).toBe(managed ? 'managed' : 'byok');
      expect(upstreamCall(marker).key, `call ${i} on ${reader}`).toBe(managed ? platformKey : key);
      if (managed) managedCalls++;
    }
    expect(await credits()).toBe(usedBefore + managedCalls);
  });

  it('managed credits are spent atomically across instances: exactly M of N parallel calls succeed', async () => {
    const token = b.token('carol');
    const A = apiClient(() => a.url, token);
    const ws = (
      await A('POST', '/api/workspaces', {
        name: 'credits',
        ai_config: { mode: 'managed', provider: 'openai' },
      })
    ).body.id as string;
    const { env } = await runtimeEnv(A, b.url, ws);
    const gatewayToken = env.RIGBOX_GATEWAY_TOKEN!;
    const userId = (await sql!.query('SELECT id FROM users WHERE name = $1', ['carol'])).rows[0].id as string;
    const period = currentPeriod().start;
    const limit = PLAN_CREDITS.free;
    const used = async () =>
      Number(
        (
          await sql!.query('SELECT used FROM credit_usage WHERE user_id = $1 AND period_start = $2', [
            userId,
            period,
          ])
        ).rows[0]?.used ?? 0,
      );

    // Spend some through real calls first (both instances), then set the rest down with SQL.
    for (const server of [a, b, a]) {
      expect((await gatewayChat(server.url, ws, gatewayToken, randomUUID())).status).toBe(200);
    }
    expect(await used()).toBe(3);

    for (const [M, N] of [
      [7, 40],
      [1, 24],
      [0, 12],
    ] as const) {
      await sql!.query(
        `INSERT INTO credit_usage (user_id, period_start, used) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, period_start) DO UPDATE SET used = EXCLUDED.used`,
        [userId, period, limit - M],
      );
      const round = randomUUID();
      const results = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          gatewayChat((i % 2 === 0 ? a : b).url, ws, gatewayToken, `${round}-${i}`).then((r) => ({
            ...r,
            i,
          })),
        ),
      );
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 402);
      expect(ok, `round M=${M} N=${N}`).toHaveLength(M);
      expect(refused).toHaveLength(N - M);
      for (const r of refused) expect(JSON.parse(r.text)).toMatchObject({ code: 'credits_exhausted' });
      // Each success reached the upstream exactly once, with the platform key; no refused call did.
      const reached = upstream.calls.filter((c) => JSON.stringify(c.body).includes(round));
      expect(reached).toHaveLength(M);
      for (const c of reached) expect(c.key).toBe(platformKey);
      expect(await used()).toBe(limit);
      for (const server of [a, b]) {
        const view = (await apiClient(() => server.url, token)('GET', '/api/users/me/credits')).body;
        expect(view).toMatchObject({ plan: 'free', limit, used: limit, balance: 0 });
      }
    }
  });

  it('concurrent If-Match PUTs split across both instances: exactly one wins per revision, the rest get 412', async () => {
    const token = a.token('erin');
    const api = [apiClient(() => a.url, token), apiClient(() => b.url, token)] as const;
    const ws = (
      await api[0]('POST', '/api/workspaces', {
        name: 'race',
        ai_config: { mode: 'byok', provider: 'openai', api_key: freshKey() },
      })
    ).body.id as string;
    let revision = (await api[1]('GET', `/api/workspaces/${ws}/ai-config`)).body.revision as number;
    expect(revision).toBe(1);

    const ROUNDS = 12;
    let lastWinnerKey = '';
    const WRITERS = 8;
    for (let round = 0; round < ROUNDS; round++) {
      const attempts = Array.from({ length: WRITERS }, (_, i) => ({
        model: `gpt-4o-r${round}-w${i}`,
        key: freshKey(),
        api: api[i % 2]!,
      }));
      const results = await Promise.all(
        attempts.map((t) =>
          t.api(
            'PUT',
            `/api/workspaces/${ws}/ai-config`,
            { mode: 'byok', provider: 'openai', api_key: t.key, model: t.model },
            { 'if-match': `"${revision}"` },
          ),
        ),
      );
      const winners = results.flatMap((r, i) => (r.status === 200 ? [{ r, i }] : []));
      expect(winners, `round ${round}: ${results.map((r) => r.status).join(',')}`).toHaveLength(1);
      const losers = results.filter((r) => r.status !== 200);
      expect(losers.map((r) => r.status)).toEqual(Array(WRITERS - 1).fill(412));
      for (const l of losers) expect(l.body.code).toBe('revision_mismatch');
      const { r: won, i } = winners[0]!;
      expect(won.body.revision).toBe(revision + 1);
      expect(won.headers.get('etag')).toBe(`"${revision + 1}"`);
      lastWinnerKey = attempts[i]!.key;

      // Both instances now serve the winner's config, and the gateway uses the winner's key.
      for (const client of api) {
        const view = (await client('GET', `/api/workspaces/${ws}/ai-config`)).body;
        expect(view).toMatchObject({
          revision: revision + 1,
          model: attempts[i]!.model,
          api_key_fingerprint: won.body.api_key_fingerprint,
        });
      }
      revision++;
    }
    // The stored key is the last winner's, and it decrypts on either instance.
    for (const [mint, server] of [
      [api[1], a],
      [api[0], b],
    ] as const) {
      expect((await runtimeEnv(mint, server.url, ws)).env.OPENAI_API_KEY).toBe(lastWinnerKey);
    }

    // The audit trail has exactly one update per revision, no lost and no duplicate write.
    const events = (await api[0]('GET', `/api/workspaces/${ws}/audit?limit=500`)).body.events as {
      action: string;
      revision: number;
    }[];
    const updates = events.filter((e) => e.action === 'ai_config.updated').map((e) => e.revision);
    expect(updates.sort((x, y) => x - y)).toEqual(Array.from({ length: ROUNDS }, (_, k) => k + 2));
  });
});
