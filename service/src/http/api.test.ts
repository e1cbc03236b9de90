import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canaryKey, folderBytes, type Harness, startHarness } from '../../../test/support/harness.js';

let h: Harness;
let alice: string;
let canary: string;

beforeEach(async () => {
  h = await startHarness();
  alice = await h.token('alice');
  canary = canaryKey();
});
afterEach(async () => {
  // Whatever a test did, the canary must not have reached a log line or been stored in the clear.
  expect(h.logs.text).not.toContain(canary);
  expect(folderBytes(h.dataDir).includes(canary)).toBe(false);
  // On PostgreSQL the data lives on the server, not in the folder: ask every column instead.
  expect(await h.columnsContaining(canary)).toEqual([]);
  await h.close();
});

const json = (body: unknown) => JSON.stringify(body);

async function call(
  method: string,
  url: string,
  body?: unknown,
  token = alice,
  headers: Record<string, string> = {},
) {
  const res = await h.service.app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { payload: typeof body === 'string' ? body : json(body) } : {}),
  });
  if (res.body.includes(canary)) throw new Error(`response to ${method} ${url} echoed the canary key`);
  return { status: res.statusCode, body: res.body ? res.json() : undefined, headers: res.headers };
}

async function workspace(name = 'demo', aiConfig?: unknown) {
  const res = await call('POST', '/api/workspaces', { name, ...(aiConfig ? { ai_config: aiConfig } : {}) });
  expect(res.status).toBe(201);
  return res.body as { id: string; ai_config: Record<string, unknown> };
}

const putConfig = (id: string, body: unknown, headers?: Record<string, string>) =>
  call('PUT', `/api/workspaces/${id}/ai-config`, body, alice, headers);

describe('auth', () => {
  it('answers 401 without a token or with a wrong one', async () => {
    expect((await call('GET', '/api/workspaces', undefined, '')).status).toBe(401);
    const res = await call('GET', '/api/workspaces', undefined, 'rbx_not-a-real-token-at-all-000000000');
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/invalid or expired token/);
  });

  it("hides another user's workspace as 404", async () => {
    const ws = await workspace();
    const bob = await h.token('bob');
    for (const [m, u] of [
      ['GET', `/api/workspaces/${ws.id}`],
      ['GET', `/api/workspaces/${ws.id}/ai-config`],
      ['GET', `/api/workspaces/${ws.id}/audit`],
      ['DELETE', `/api/workspaces/${ws.id}`],
    ] as const) {
      expect((await call(m, u, undefined, bob)).status).toBe(404);
    }
    const put = await call(
      'PUT',
      `/api/workspaces/${ws.id}/ai-config`,
      { mode: 'managed', provider: 'openai' },
      bob,
    );
    expect(put.status).toBe(404);
    expect((await call('GET', '/api/workspaces', undefined, bob)).body.workspaces).toEqual([]);
    expect((await call('GET', `/api/workspaces/${ws.id}`)).status).toBe(200);
  });
});

describe('listing some workspaces by id', () => {
  it("answers the named workspaces of the caller with their configs, leaving out others'", async () => {
    const a = await workspace('list-a');
    const b = await workspace('list-b', { mode: 'byok', provider: 'anthropic', api_key: canary });
    const bob = await h.token('bob');
    const bobs = (await call('POST', '/api/workspaces', { name: 'bobs' }, bob)).body as { id: string };
    const res = await call('GET', `/api/workspaces?ids=${b.id},${a.id},${bobs.id},ws_does_not_exist`);
    expect(res.status).toBe(200);
    const listed = res.body.workspaces as { id: string; ai_config: Record<string, unknown> }[];
    expect(listed.map((w) => w.id).sort()).toEqual([a.id, b.id].sort());
    const single = await call('GET', `/api/workspaces/${b.id}/ai-config`);
    expect(listed.find((w) => w.id === b.id)?.ai_config).toEqual(single.body);
  });

  it('refuses a malformed or oversize id list, naming the parameter', async () => {
    for (const ids of ['', 'a,,b', 'ws/1', Array.from({ length: 101 }, (_, i) => `ws_${i}`).join(',')]) {
      const res = await call('GET', `/api/workspaces?ids=${encodeURIComponent(ids)}`);
      expect(res.status, ids.slice(0, 20)).toBe(400);
      expect(res.body.message).toContain('ids');
    }
    expect((await call('GET', '/api/workspaces?other=1')).status).toBe(400);
  });
});

describe('PUT ai-config rules', () => {
  it('stores a byok key write-only and shows only its fingerprint', async () => {
    const ws = await workspace();
    const res = await putConfig(ws.id, {
      mode: 'byok',
      provider: 'anthropic',
      api_key: canary,
      model: 'claude-sonnet-4-20250514',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ mode: 'byok', provider: 'anthropic', api_key_set: true, revision: 2 });
    expect(res.body.api_key_fingerprint).toMatch(/^hmac-sha256:[A-Za-z0-9_-]{32}$/);
    expect(res.headers.etag).toBe('"2"');
    // No prefix or suffix of the key leaks through the fingerprint.
    expect(res.body.api_key_fingerprint).not.toContain(canary.slice(-6));
    const read = await call('GET', `/api/workspaces/${ws.id}/ai-config`);
    expect(read.body).toEqual(res.body);
    expect(Object.keys(read.body)).not.toContain('api_key');
  });

  it('is idempotent: the same PUT keeps the revision and adds no audit event', async () => {
    const ws = await workspace();
    const body = { mode: 'byok', provider: 'anthropic', api_key: canary, model: 'claude-sonnet-4-20250514' };
    const first = await putConfig(ws.id, body);
    const second = await putConfig(ws.id, body);
    expect(second.body).toEqual(first.body);
    const audit = await call('GET', `/api/workspaces/${ws.id}/audit`);
    expect(audit.body.events.map((e: { action: string }) => e.action)).toEqual([
      'ai_config.updated',
      'workspace.created',
    ]);
  });

  it('rotates, keeps, clears and switches to managed with the right key events', async () => {
    const ws = await workspace();
    await putConfig(ws.id, { mode: 'byok', provider: 'anthropic', api_key: canary });
    const fp1 = (await call('GET', `/api/workspaces/${ws.id}/ai-config`)).body.api_key_fingerprint;
    const other = canaryKey();
    const rotated = await putConfig(ws.id, { mode: 'byok', provider: 'anthropic', api_key: other });
    expect(rotated.body.api_key_fingerprint).not.toBe(fp1);
    const kept = await putConfig(ws.id, { mode: 'byok', provider: 'anthropic', model: 'claude-opus-4' });
    expect(kept.body).toMatchObject({
      api_key_set: true,
      api_key_fingerprint: rotated.body.api_key_fingerprint,
      model: 'claude-opus-4',
    });
    const cleared = await putConfig(ws.id, { mode: 'byok', provider: 'anthropic', api_key: null });
    expect(cleared.body).toMatchObject({
      mode: 'byok',
      api_key_set: false,
      api_key_fingerprint: null,
      model: 'claude-opus-4',
    });
    await putConfig(ws.id, { mode: 'byok', provider: 'anthropic', api_key: canary });
    const managed = await putConfig(ws.id, {
      mode: 'managed',
      provider: 'anthropic',
      model: 'claude-sonnet-4-20250514',
    });
    expect(managed.body).toMatchObject({ mode: 'managed', api_key_set: false });
    const events = (await call('GET', `/api/workspaces/${ws.id}/audit`)).body.events;
    expect(events.map((e: { key_event: string | null }) => e.key_event)).toEqual([
      'cleared',
      'set',
      'cleared',
      null,
      'rotated',
      'set',
      null,
    ]);
    expect(JSON.stringify(events)).not.toContain(other);
  });

  it('refuses a provider change without a key when a key is stored', async () => {
    const ws = await workspace();
    await putConfig(ws.id, { mode: 'byok', provider: 'anthropic', api_key: canary });
    const res = await putConfig(ws.id, { mode: 'byok', provider: 'openai' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'api_key_required', field: 'api_key' });
    expect((await call('GET', `/api/workspaces/${ws.id}/ai-config`)).body).toMatchObject({
      provider: 'anthropic',
      revision: 2,
    });
  });

  it.each([
    [
      'key in managed mode',
      { mode: 'managed', provider: 'openai', api_key: 'sk-proj-CANARYxxxxxxxxxxxx' },
      422,
      'api_key',
    ],
    ['managed mode on a byok-only provider', { mode: 'managed', provider: 'mistral' }, 422, 'provider'],
    ['empty key', { mode: 'byok', provider: 'openai', api_key: '' }, 422, 'api_key'],
    ['whitespace key', { mode: 'byok', provider: 'openai', api_key: '   \t ' }, 422, 'api_key'],
    [
      'key with inner space',
      { mode: 'byok', provider: 'openai', api_key: 'sk-proj-CANARY abcdefgh' },
      422,
      'api_key',
    ],
    [
      'wrong known prefix',
      { mode: 'byok', provider: 'anthropic', api_key: 'sk-proj-CANARYxxxxxxxxxxxx' },
      422,
      'api_key',
    ],
    [
      'anthropic key for openai',
      { mode: 'byok', provider: 'openai', api_key: 'sk-ant-api03-CANARYxxxxxxx' },
      422,
      'api_key',
    ],
    ['oversize key', { mode: 'byok', provider: 'openai', api_key: `sk-${'x'.repeat(600)}` }, 422, 'api_key'],
  ])('refuses %s with 422 naming the field, writing nothing', async (_name, body, status, field) => {
    const ws = await workspace();
    const res = await putConfig(ws.id, body);
    expect(res.status).toBe(status);
    expect(res.body.field).toBe(field);
    expect(res.body.message).toContain(field);
    const key = (body as { api_key?: string }).api_key;
    if (key?.trim()) expect(JSON.stringify(res.body)).not.toContain(key.trim());
    expect((await call('GET', `/api/workspaces/${ws.id}/ai-config`)).body.revision).toBe(1);
  });

  it.each([
    ['unknown mode', { mode: 'free', provider: 'openai' }, 'mode'],
    ['unknown provider', { mode: 'byok', provider: 'acme' }, 'provider'],
    ['unknown field', { mode: 'byok', provider: 'openai', api_keys: 'sk-CANARYxxxxxxxxxxxx' }, 'api_keys'],
    ['key of the wrong type', { mode: 'byok', provider: 'openai', api_key: 12345678 }, 'api_key'],
    ['model of the wrong type', { mode: 'byok', provider: 'openai', model: ['gpt-4o'] }, 'model'],
    ['model with spaces', { mode: 'byok', provider: 'openai', model: 'gpt 4o' }, 'model'],
  ])('refuses %s with 400 naming the field', async (_name, body, field) => {
    const ws = await workspace();
    const res = await putConfig(ws.id, body);
    expect(res.status).toBe(400);
    expect(res.body.issues.map((i: { field: string }) => i.field)).toContain(field);
    expect(JSON.stringify(res.body)).not.toContain('CANARY');
    expect((await call('GET', `/api/workspaces/${ws.id}/ai-config`)).body.revision).toBe(1);
  });

  it('refuses bad JSON without quoting the body', async () => {
    const ws = await workspace();
    const res = await putConfig(ws.id, `{"mode":"byok","provider":"anthropic","api_key": ${canary}}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'invalid_json', message: 'request body is not valid JSON' });
    expect(h.logs.text).not.toContain('CANARY');
  });

  it('refuses an oversize body with 413', async () => {
    const ws = await workspace();
    const res = await putConfig(ws.id, {
      mode: 'byok',
      provider: 'openai',
      model: 'm',
      api_key: `sk-${'C'.repeat(20_000)}`,
    });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('body_too_large');
  });

  it('answers 404 for an unknown workspace', async () => {
    const res = await putConfig('ws_missing', { mode: 'managed', provider: 'openai' });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_found');
  });

  it('uses If-Match for optimistic concurrency', async () => {
    const ws = await workspace();
    const stale = await putConfig(
      ws.id,
      { mode: 'byok', provider: 'openai', api_key: null },
      { 'if-match': '"7"' },
    );
    expect(stale.status).toBe(412);
    expect(stale.body.code).toBe('revision_mismatch');
    const ok = await putConfig(ws.id, { mode: 'byok', provider: 'openai' }, { 'if-match': '"1"' });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe('"2"');
    const again = await putConfig(
      ws.id,
      { mode: 'byok', provider: 'openai', model: 'gpt-4o' },
      { 'if-match': '"1"' },
    );
    expect(again.status).toBe(412);
    expect((await call('GET', `/api/workspaces/${ws.id}/ai-config`)).body).toMatchObject({
      model: null,
      revision: 2,
    });
  });

  it('lets exactly one of several concurrent If-Match writers win', async () => {
    const ws = await workspace();
    const results = await Promise.all(
      ['gpt-4o', 'gpt-4.1', 'o3', 'gpt-5'].map((model) =>
        putConfig(ws.id, { mode: 'byok', provider: 'openai', model }, { 'if-match': '"1"' }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 412)).toHaveLength(3);
  });
});

describe('defaults and workspaces', () => {
  it('starts new workspaces from a snapshot of the defaults, key included', async () => {
    const implicit = await call('GET', '/api/users/me/ai-defaults');
    expect(implicit.body).toMatchObject({
      mode: 'managed',
      provider: 'anthropic',
      revision: 0,
      workspace_id: null,
    });
    const defaults = await call('PUT', '/api/users/me/ai-defaults', {
      mode: 'byok',
      provider: 'anthropic',
      api_key: canary,
      model: 'claude-sonnet-4-20250514',
    });
    expect(defaults.body).toMatchObject({ revision: 1, api_key_set: true });
    const ws = await workspace('inherits');
    expect(ws.ai_config).toMatchObject({
      mode: 'byok',
      provider: 'anthropic',
      model: 'claude-sonnet-4-20250514',
      api_key_set: true,
      api_key_fingerprint: defaults.body.api_key_fingerprint,
      revision: 1,
    });
    // Later changes to the defaults do not reach an existing workspace.
    await call('PUT', '/api/users/me/ai-defaults', { mode: 'managed', provider: 'openai' });
    expect((await call('GET', `/api/workspaces/${ws.id}/ai-config`)).body).toMatchObject({
      mode: 'byok',
      api_key_set: true,
    });
    // An explicit ai_config overrides the defaults at creation.
    const own = await workspace('own', {
      mode: 'byok',
      provider: 'google',
      api_key: `AIza${'C'.repeat(35)}`,
      model: 'google/gemini-2.5-pro',
    });
    expect(own.ai_config).toMatchObject({
      mode: 'byok',
      provider: 'google',
      model: 'google/gemini-2.5-pro',
      api_key_set: true,
    });
    const events = (await call('GET', `/api/workspaces/${ws.id}/audit`)).body.events;
    expect(events[0]).toMatchObject({ action: 'workspace.created', key_event: 'set', actor: 'alice' });
  });

  it('refuses a bad ai_config at creation and creates nothing', async () => {
    const res = await call('POST', '/api/workspaces', {
      name: 'x',
      ai_config: { mode: 'managed', provider: 'openai', api_key: canary },
    });
    expect(res.status).toBe(422);
    expect((await call('GET', '/api/workspaces')).body.workspaces).toEqual([]);
    expect((await call('POST', '/api/workspaces', { name: '' })).status).toBe(400);
  });

  it('lists, reads and deletes workspaces; the audit trail survives', async () => {
    const a = await workspace('a');
    await workspace('b');
    expect(
      (await call('GET', '/api/workspaces')).body.workspaces.map((w: { name: string }) => w.name),
    ).toEqual(['a', 'b']);
    expect((await call('DELETE', `/api/workspaces/${a.id}`)).status).toBe(204);
    expect((await call('GET', `/api/workspaces/${a.id}`)).status).toBe(404);
    expect((await call('DELETE', `/api/workspaces/${a.id}`)).status).toBe(404);
    const kept = await h.service.storage.listAudit({ kind: 'workspace', id: a.id }, { limit: 10 });
    expect(kept.items.map((e) => e.action)).toEqual(['workspace.deleted', 'workspace.created']);
  });
});

describe('hardening', () => {
  it('sends security headers and no-store on every answer, errors included', async () => {
    const answers = [
      await call('GET', '/api/workspaces'),
      await call('GET', '/api/workspaces', undefined, ''),
      await call('GET', '/api/nothing-here'),
      await call('GET', '/api/workspaces/ws_unknown/ai-config'),
      await call('PUT', '/api/users/me/ai-defaults', { mode: 'sideways' }),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401, 404, 404, 400]);
    for (const res of answers) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(String(res.headers['content-security-policy'])).toContain("default-src 'none'");
    }
  });

  it('rate-limits per token', async () => {
    const limited = await startHarness({ rateLimitPerMinute: 3 });
    try {
      const t = await limited.token('carol');
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof limited.service.app.inject>> | undefined;
      for (let i = 0; i < 5; i++) {
        last = await limited.service.app.inject({
          url: '/api/workspaces',
          headers: { authorization: `Bearer ${t}` },
        });
        statuses.push(last.statusCode);
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(last?.headers['x-content-type-options']).toBe('nosniff');
      expect(last?.json()).toMatchObject({ code: 'rate_limited' });
    } finally {
      await limited.close();
    }
  });

  it('scans every stored column for the canary, a scan that does find what is stored', async () => {
    const marker = `scan-marker-${Date.now()}`;
    await workspace(marker);
    expect(await h.columnsContaining(marker)).toContain('workspaces.name');
  });

  it('never logs the authorization header or a body', async () => {
    const ws = await workspace();
    await putConfig(ws.id, { mode: 'byok', provider: 'anthropic', api_key: canary });
    expect(h.logs.text).not.toContain(alice);
    expect(h.logs.lines.length).toBeGreaterThan(0);
  });
});
