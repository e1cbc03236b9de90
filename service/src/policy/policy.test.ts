import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  canaryKey,
  folderBytes,
  type Harness,
  LogCapture,
  startHarness,
} from '../../../test/support/harness.js';
import { createLogger } from '../logging/logger.js';
import { createService, type Service } from '../service.js';

// The account BYOK policy through the API (issue 18): what `enforce` refuses, what `report` lets
// through and records, the report, and the races. Runs on SQLite and on PostgreSQL.

let h: Harness;
let alice: string;
let masterKey: string;
const canaries: string[] = [];
const key = (prefix = 'sk-proj-') => {
  const k = canaryKey(prefix);
  canaries.push(k);
  return k;
};

beforeEach(async () => {
  masterKey = randomBytes(32).toString('hex');
  h = await startHarness({ env: { RIGBOX_MASTER_KEY: masterKey } });
  alice = await h.token('alice');
});
afterEach(async () => {
  for (const k of canaries.splice(0)) {
    expect(h.logs.text).not.toContain(k);
    expect(folderBytes(h.dataDir).includes(k)).toBe(false);
    expect(await h.columnsContaining(k)).toEqual([]);
  }
  await h.close();
});

async function call(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  app = h.service.app,
  token = alice,
) {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
  for (const k of canaries) {
    if (res.body.includes(k)) throw new Error(`${method} ${url} echoed a key`);
  }
  const json = res.headers['content-type']?.toString().startsWith('application/json');
  return { status: res.statusCode, body: json ? res.json() : res.body, headers: res.headers };
}

const putPolicy = (policy: unknown, headers?: Record<string, string>) =>
  call('PUT', '/api/users/me/byok-policy', policy, headers);
const putConfig = (id: string, config: unknown, headers?: Record<string, string>) =>
  call('PUT', `/api/workspaces/${id}/ai-config`, config, headers);
async function workspace(name: string, aiConfig?: unknown) {
  const res = await call('POST', '/api/workspaces', { name, ...(aiConfig ? { ai_config: aiConfig } : {}) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}
/** The account's audit export, parsed. */
async function exported() {
  const res = await call('GET', '/api/users/me/audit/export?limit=10000');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
  return (res.body as string)
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as Record<string, unknown> & { action: string; changes: Record<string, unknown[]> },
    );
}

const openaiOnly = { allowed_providers: ['openai'], allowed_models: { openai: ['gpt-4o', 'gpt-4o-mini'] } };

describe('the policy document', () => {
  it('starts empty (everything allowed) at revision 0, and is replaced with ETag and If-Match', async () => {
    const empty = await call('GET', '/api/users/me/byok-policy');
    expect(empty.status).toBe(200);
    expect(empty.headers.etag).toBe('"0"');
    expect(empty.body).toEqual({
      enforcement: 'enforce',
      allowed_modes: null,
      allowed_providers: null,
      allowed_models: null,
      max_key_age_days: null,
      revision: 0,
      updated_at: null,
    });
    const set = await putPolicy({ ...openaiOnly, max_key_age_days: 90 }, { 'if-match': '"0"' });
    expect(set.status).toBe(200);
    expect(set.headers.etag).toBe('"1"');
    expect(set.body).toMatchObject({ enforcement: 'enforce', allowed_providers: ['openai'], revision: 1 });
    // The same document again changes nothing.
    expect((await putPolicy({ ...openaiOnly, max_key_age_days: 90 })).body.revision).toBe(1);
    const stale = await putPolicy({ enforcement: 'report' }, { 'if-match': '"0"' });
    expect(stale.status).toBe(412);
    expect(stale.body.code).toBe('revision_mismatch');
    expect((await call('GET', '/api/users/me/byok-policy')).body.revision).toBe(1);
  });

  it.each([
    ['a policy that allows no mode', { allowed_modes: [] }, 'allowed_modes', /allows no mode/],
    ['no provider', { allowed_providers: [] }, 'allowed_providers', /allows no provider/],
    [
      'an unknown provider in allowed_models',
      { allowed_models: { acme: ['m1'] } },
      'allowed_models.acme',
      /unrecognized/i,
    ],
    [
      'an empty model list',
      { allowed_models: { openai: [] } },
      'allowed_models.openai',
      /at least one model/,
    ],
    [
      'a model list for a provider that is not allowed',
      { allowed_providers: ['openai'], allowed_models: { anthropic: ['claude-x'] } },
      'allowed_models.anthropic',
      /allowed_providers does not allow/,
    ],
    ['a negative age', { max_key_age_days: -5 }, 'max_key_age_days', /at least 1/],
    ['a zero age', { max_key_age_days: 0 }, 'max_key_age_days', /at least 1/],
    ['an absurd age', { max_key_age_days: 1_000_000 }, 'max_key_age_days', /at most 3650/],
    ['a fractional age', { max_key_age_days: 1.5 }, 'max_key_age_days', /whole number/],
    ['an unknown mode', { allowed_modes: ['free'] }, 'allowed_modes.0', /./],
    ['an unknown enforcement', { enforcement: 'warn' }, 'enforcement', /./],
    ['an unknown rule', { allowed_regions: ['eu'] }, 'allowed_regions', /unrecognized/i],
  ])('refuses %s with a 400 naming the field', async (_label, policy, field, message) => {
    const res = await putPolicy(policy);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_request');
    const issue = (res.body.issues as { field: string; message: string }[]).find((i) => i.field === field);
    expect(issue, JSON.stringify(res.body)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect((await call('GET', '/api/users/me/byok-policy')).body.revision).toBe(0);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await call('GET', '/openapi.json')).body;
    for (const path of [
      '/api/users/me/byok-policy',
      '/api/users/me/byok-policy/report',
      '/api/users/me/byok-policy/check',
      '/api/users/me/audit/export',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(JSON.stringify(doc.paths['/api/users/me/byok-policy'].put.requestBody)).toContain(
      'max_key_age_days',
    );
  });
});

describe('enforce', () => {
  it('refuses a PUT ai-config that breaks a rule: 422 naming rule and field, nothing written, the refusal audited', async () => {
    const id = await workspace('w1', { mode: 'byok', provider: 'openai', api_key: key(), model: 'gpt-4o' });
    await putPolicy(openaiOnly);
    const before = (await call('GET', `/api/workspaces/${id}/ai-config`)).body;
    const wrongProvider = await putConfig(id, {
      mode: 'byok',
      provider: 'anthropic',
      api_key: key('sk-ant-api03-'),
      model: 'claude-sonnet-4',
    });
    expect(wrongProvider.status).toBe(422);
    expect(wrongProvider.body).toMatchObject({
      code: 'policy_violation',
      rule: 'allowed_providers',
      field: 'provider',
    });
    expect(wrongProvider.body.message).toMatch(
      /provider "anthropic" is not allowed.*set provider to one of them/,
    );
    const wrongModel = await putConfig(id, { mode: 'byok', provider: 'openai', model: 'gpt-3.5-turbo' });
    expect(wrongModel.status).toBe(422);
    expect(wrongModel.body).toMatchObject({ rule: 'allowed_models', field: 'model' });
    expect(wrongModel.body.message).toContain('"gpt-4o", "gpt-4o-mini"');
    const defaultModel = await putConfig(id, { mode: 'byok', provider: 'openai', model: null });
    expect(defaultModel.body).toMatchObject({ rule: 'allowed_models', field: 'model' });
    expect((await call('GET', `/api/workspaces/${id}/ai-config`)).body).toEqual(before);
    // An allowed change still goes through.
    expect((await putConfig(id, { mode: 'byok', provider: 'openai', model: 'gpt-4o-mini' })).status).toBe(
      200,
    );
    const refusals = (await exported()).filter((e) => e.action === 'ai_config.refused_by_policy');
    expect(refusals).toHaveLength(3);
    expect(refusals[0]).toMatchObject({ owner_kind: 'workspace', owner_id: id });
    expect(refusals[0]!.changes.rules).toEqual([null, ['allowed_providers']]);
  });

  it('refuses mode, PUT ai-defaults and POST workspaces with a config the same way; nothing is created', async () => {
    await putPolicy({ allowed_modes: ['byok'] });
    const managed = await call('PUT', '/api/users/me/ai-defaults', {
      mode: 'managed',
      provider: 'anthropic',
    });
    expect(managed.status).toBe(422);
    expect(managed.body).toMatchObject({ code: 'policy_violation', rule: 'allowed_modes', field: 'mode' });
    expect((await call('GET', '/api/users/me/ai-defaults')).body.revision).toBe(0);
    const created = await call('POST', '/api/workspaces', {
      name: 'nope',
      ai_config: { mode: 'managed', provider: 'openai' },
    });
    expect(created.status).toBe(422);
    expect(created.body).toMatchObject({ rule: 'allowed_modes', field: 'mode' });
    expect((await call('GET', '/api/workspaces')).body.workspaces).toEqual([]);
  });

  it('refuses a workspace that would inherit defaults that break the policy, naming ai_config', async () => {
    // Defaults set before the policy: the policy does not rewrite them, but nothing inherits them.
    await call('PUT', '/api/users/me/ai-defaults', {
      mode: 'byok',
      provider: 'anthropic',
      api_key: key('sk-ant-api03-'),
    });
    await putPolicy(openaiOnly);
    const res = await call('POST', '/api/workspaces', { name: 'inherits' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({
      code: 'policy_violation',
      rule: 'allowed_providers',
      field: 'ai_config',
    });
    expect(res.body.message).toMatch(
      /defaults a new workspace inherits.*change the defaults, or create the workspace with an ai_config/,
    );
    expect((await call('GET', '/api/workspaces')).body.workspaces).toEqual([]);
    // With a config of its own that the policy allows, it is created.
    await workspace('own', { mode: 'byok', provider: 'openai', model: 'gpt-4o', api_key: key() });
    const refused = (await exported()).filter((e) => e.action === 'ai_config.refused_by_policy');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ owner_kind: 'account' });
  });
});

describe('report', () => {
  it('lets a violating write through and records the violation', async () => {
    await putPolicy({ ...openaiOnly, enforcement: 'report' });
    const id = await workspace('w', { mode: 'byok', provider: 'anthropic', api_key: key('sk-ant-api03-') });
    expect((await putConfig(id, { mode: 'byok', provider: 'anthropic', model: 'claude-x' })).status).toBe(
      200,
    );
    // Recorded in the write's own audit event.
    const reported = (await exported()).filter((e) => e.changes.policy_violations);
    expect(reported.map((e) => e.action)).toEqual(['workspace.created', 'ai_config.updated']);
    expect(reported[1]).toMatchObject({ owner_kind: 'workspace', owner_id: id, revision: 2 });
    expect(reported[0]!.changes.policy_violations).toEqual([null, ['allowed_providers']]);
    expect(reported[1]!.changes.policy_violations).toEqual([null, ['allowed_providers']]);
  });
});

describe('the report', () => {
  it('lists the defaults and every workspace, paged, with the rules each breaks and key ages', async () => {
    const fresh = await workspace('fresh', {
      mode: 'byok',
      provider: 'openai',
      api_key: key(),
      model: 'gpt-4o',
    });
    const old = await workspace('old', { mode: 'byok', provider: 'openai', api_key: key(), model: 'gpt-4o' });
    const other = await workspace('other', { mode: 'managed', provider: 'anthropic' });
    // The stored key of `old` was set 200 days ago.
    const longAgo = new Date(Date.now() - 200 * 86_400_000).toISOString();
    await h.tamperConfigRow({ kind: 'workspace', id: old }, { key_updated_at: longAgo });
    // The policy changes after the configs: they are not rewritten, the report shows them outside it.
    await putPolicy({ ...openaiOnly, max_key_age_days: 90 });
    expect((await call('GET', `/api/workspaces/${other}/ai-config`)).body.provider).toBe('anthropic');

    const first = await call('GET', '/api/users/me/byok-policy/report?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.policy).toEqual({ enforcement: 'enforce', revision: 1 });
    expect(first.body.defaults).toMatchObject({
      workspace_id: null,
      provider: 'anthropic',
      compliant: false,
      key_age_days: null,
      key_past_max_age: false,
    });
    expect(first.body.workspaces.map((w: { workspace_id: string }) => w.workspace_id)).toEqual([fresh, old]);
    expect(first.body.workspaces[0]).toMatchObject({
      compliant: true,
      violations: [],
      key_age_days: 0,
      key_past_max_age: false,
    });
    expect(first.body.workspaces[1]).toMatchObject({
      compliant: false,
      key_age_days: 200,
      key_past_max_age: true,
    });
    expect(first.body.workspaces[1].violations).toEqual([
      expect.objectContaining({
        rule: 'max_key_age_days',
        field: 'api_key',
        message: expect.stringMatching(/200 days old.*rotate it at its source/),
      }),
    ]);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    expect(first.headers.link).toContain('rel="next"');
    const second = await call(
      'GET',
      `/api/users/me/byok-policy/report?limit=2&cursor=${first.body.next_cursor}`,
    );
    expect(second.body.defaults).toBeNull();
    expect(second.body.next_cursor).toBeNull();
    expect(second.body.workspaces).toEqual([
      expect.objectContaining({
        workspace_id: other,
        name: 'other',
        compliant: false,
        violations: [expect.objectContaining({ rule: 'allowed_providers' })],
      }),
    ]);
    const foreign = await call(
      'GET',
      `/api/users/me/byok-policy/report?cursor=${first.body.next_cursor}`,
      undefined,
      {},
      h.service.app,
      await h.token('bob'),
    );
    expect(foreign.status).toBe(400);
    expect(foreign.body.field).toBe('cursor');
  });

  it('checks a candidate config without writing (what the provider asks at plan)', async () => {
    await putPolicy({ ...openaiOnly, max_key_age_days: 30, enforcement: 'report' });
    const res = await call('POST', '/api/users/me/byok-policy/check', {
      mode: 'byok',
      provider: 'openai',
      model: 'gpt-5',
      api_key_updated_at: new Date(Date.now() - 40 * 86_400_000).toISOString(),
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ enforcement: 'report', revision: 1, max_key_age_days: 30 });
    expect(res.body.violations.map((v: { rule: string }) => v.rule)).toEqual([
      'allowed_models',
      'max_key_age_days',
    ]);
    const ok = await call('POST', '/api/users/me/byok-policy/check', {
      mode: 'byok',
      provider: 'openai',
      model: 'gpt-4o',
    });
    expect(ok.body.violations).toEqual([]);
  });
});

describe('races', () => {
  it('a policy change racing config writes, If-Match on both: no write commits after the policy that forbids it', async () => {
    const id = await workspace('race', { mode: 'byok', provider: 'openai', api_key: key(), model: 'gpt-4o' });
    const writes = Array.from({ length: 30 }, async (_, i) => {
      const current = await call('GET', `/api/workspaces/${id}/ai-config`);
      return putConfig(
        id,
        { mode: 'byok', provider: 'openai', model: i % 2 ? 'gpt-4o-mini' : 'gpt-3.5-turbo' },
        { 'if-match': current.headers.etag as string },
      );
    });
    const policy = (async () => {
      await new Promise((r) => setTimeout(r, 5));
      return putPolicy({ allowed_models: { openai: ['gpt-4o', 'gpt-4o-mini'] } }, { 'if-match': '"0"' });
    })();
    const results = await Promise.all([...writes, policy]);
    expect((await policy).status).toBe(200);
    for (const r of results) expect([200, 412, 422]).toContain(r.status);
    // In commit order (the chain), no forbidden model is written after the policy event.
    const events = await exported();
    const at = events.findIndex((e) => e.action === 'byok_policy.updated');
    const after = events.slice(at + 1).filter((e) => e.action === 'ai_config.updated');
    for (const e of after) expect(e.changes.model?.[1]).not.toBe('gpt-3.5-turbo');
  });

  it('report switched to enforce while writes flow: every write after the switch is checked under enforce', async () => {
    const id = await workspace('flow', { mode: 'byok', provider: 'openai', api_key: key(), model: 'gpt-4o' });
    await putPolicy({ allowed_models: { openai: ['gpt-4o'] }, enforcement: 'report' });
    let stop = false;
    const statuses: number[] = [];
    const writer = (async () => {
      for (let i = 0; !stop && i < 400; i++) {
        const res = await putConfig(id, {
          mode: 'byok',
          provider: 'openai',
          model: i % 2 ? 'gpt-4o' : 'gpt-4.1',
        });
        statuses.push(res.status);
      }
    })();
    await new Promise((r) => setTimeout(r, 40));
    expect((await putPolicy({ allowed_models: { openai: ['gpt-4o'] }, enforcement: 'enforce' })).status).toBe(
      200,
    );
    await new Promise((r) => setTimeout(r, 40));
    stop = true;
    await writer;
    expect(statuses).toContain(422);
    const events = await exported();
    const switchAt = events.findIndex(
      (e) => e.action === 'byok_policy.updated' && e.changes.enforcement?.[1] === 'enforce',
    );
    expect(switchAt).toBeGreaterThan(0);
    const before = events.slice(0, switchAt);
    const after = events.slice(switchAt + 1);
    expect(before.some((e) => e.changes.policy_violations !== undefined)).toBe(true);
    expect(after.some((e) => e.changes.policy_violations !== undefined)).toBe(false);
    expect(
      after.filter((e) => e.action === 'ai_config.updated').every((e) => e.changes.model?.[1] === 'gpt-4o'),
    ).toBe(true);
    expect(after.some((e) => e.action === 'ai_config.refused_by_policy')).toBe(true);
  });

  it('two instances on one store: a policy set through one binds the next write through the other', async () => {
    const logs = new LogCapture();
    const other: Service = await createService({
      dataDir: h.dataDir,
      databaseUrl: h.databaseUrl,
      env: { RIGBOX_MASTER_KEY: masterKey },
      logger: createLogger({ level: 'debug', destination: logs }),
      rateLimitPerMinute: 100_000,
    });
    try {
      const id = await workspace('shared', {
        mode: 'byok',
        provider: 'openai',
        api_key: key(),
        model: 'gpt-4o',
      });
      expect((await putPolicy({ allowed_models: { openai: ['gpt-4o'] } })).status).toBe(200);
      const res = await call(
        'PUT',
        `/api/workspaces/${id}/ai-config`,
        { mode: 'byok', provider: 'openai', model: 'gpt-4.1' },
        {},
        other.app,
      );
      expect(res.status).toBe(422);
      expect(res.body.rule).toBe('allowed_models');
      // And the other way round.
      const loosen = await call('PUT', '/api/users/me/byok-policy', {}, { 'if-match': '"1"' }, other.app);
      expect(loosen.status).toBe(200);
      expect((await putConfig(id, { mode: 'byok', provider: 'openai', model: 'gpt-4.1' })).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});
