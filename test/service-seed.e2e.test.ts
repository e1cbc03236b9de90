import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from './support/api.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { RigboxServer, rigbox, rigboxAsync } from './support/rigbox-server.js';

/**
 * The seed docs' curl examples, run against a real `rigbox serve` process with a token from the
 * real CLI, and a canary key pushed through all of it.
 */
const server = new RigboxServer(undefined, { RIGBOX_MASTER_KEY_FILE: '' });
const canaries = {
  openai: canaryKey('sk-proj-'),
  anthropic: canaryKey('sk-ant-api03-'),
  google: `AIza${randomBytes(26).toString('base64url').replace(/[-_]/g, 'C')}CANARY`,
  defaults: canaryKey('sk-ant-api03-'),
};
const bodies: string[] = [];
let token = '';

const api = apiClient(
  () => server.url,
  () => token,
  { record: bodies },
);

beforeAll(async () => {
  await server.start();
  token = server.token('alice');
});
afterAll(async () => {
  await server.stop();
  // The invariant: no canary in any log line, response body or database file (WAL included).
  const everything = [server.output, ...bodies].join('\n');
  const stored = folderBytes(server.dataDir);
  for (const canary of Object.values(canaries)) {
    expect(everything).not.toContain(canary);
    expect(stored.includes(canary)).toBe(false);
  }
  await server.dispose();
});

describe('the seed docs, against a running service', () => {
  let ws = '';

  it('token create prints only the token on stdout', () => {
    const res = rigbox(['token', 'create', '--user', 'bob'], server.allEnv);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^rbx_[A-Za-z0-9_-]{43}\n$/);
    expect(res.stderr).toMatch(/created a token for user bob/);
  });

  it('CLI errors are one line with a non-zero exit', () => {
    const res = rigbox(['token', 'create'], server.allEnv);
    expect(res.status).not.toBe(0);
    expect(res.stderr.trim().split('\n')[0]).toBe('rigbox: error: token create needs --user <name>');
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(rigbox(['frobnicate'], server.allEnv).status).not.toBe(0);
  });

  it('serve refuses an upstream base URL it cannot use, at start, without quoting it', () => {
    const res = rigbox(['serve', '--port', '0'], {
      ...server.allEnv,
      RIGBOX_UPSTREAM_OPENAI: 'ftp://user:hunter2secret@example.com',
    });
    expect(res.status).not.toBe(0);
    expect(res.stderr.trim()).toBe(
      'rigbox: error: RIGBOX_UPSTREAM_OPENAI must be an http:// or https:// URL',
    );
    expect(res.stderr).not.toContain('hunter2secret');
  });

  it('Set BYOK Mode (OpenAI)', async () => {
    ws = (await api('POST', '/api/workspaces', { name: 'seed' })).body.id;
    const res = await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'byok',
      provider: 'openai',
      api_key: canaries.openai,
      model: 'gpt-4o',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ mode: 'byok', provider: 'openai', model: 'gpt-4o', api_key_set: true });
  });

  it('Anthropic (Claude)', async () => {
    const res = await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'byok',
      provider: 'anthropic',
      api_key: canaries.anthropic,
      model: 'claude-sonnet-4-20250514',
    });
    expect(res.body).toMatchObject({
      provider: 'anthropic',
      model: 'claude-sonnet-4-20250514',
      api_key_set: true,
    });
  });

  it('Google (Gemini)', async () => {
    const res = await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'byok',
      provider: 'google',
      api_key: canaries.google,
      model: 'google/gemini-2.5-pro',
    });
    expect(res.body).toMatchObject({ provider: 'google', model: 'google/gemini-2.5-pro', api_key_set: true });
  });

  it('Clear a Key', async () => {
    const res = await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'byok',
      provider: 'google',
      api_key: null,
    });
    expect(res.body).toMatchObject({
      mode: 'byok',
      provider: 'google',
      api_key_set: false,
      api_key_fingerprint: null,
    });
  });

  it('Switch Back to Managed Mode', async () => {
    await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'byok',
      provider: 'openai',
      api_key: canaries.openai,
    });
    const res = await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'managed',
      provider: 'anthropic',
      model: 'claude-sonnet-4-20250514',
    });
    expect(res.body).toMatchObject({ mode: 'managed', provider: 'anthropic', api_key_set: false });
    const audit = await api('GET', `/api/workspaces/${ws}/audit`);
    expect(audit.body.events[0]).toMatchObject({
      key_event: 'cleared',
      changes: { mode: ['byok', 'managed'] },
    });
  });

  it('Set Defaults for New Workspaces', async () => {
    const res = await api('PUT', '/api/users/me/ai-defaults', {
      mode: 'byok',
      provider: 'anthropic',
      api_key: canaries.defaults,
      model: 'claude-sonnet-4-20250514',
    });
    expect(res.body).toMatchObject({ mode: 'byok', api_key_set: true });
    const created = await api('POST', '/api/workspaces', { name: 'inherits' });
    expect(created.body.ai_config).toMatchObject({
      mode: 'byok',
      provider: 'anthropic',
      api_key_fingerprint: res.body.api_key_fingerprint,
    });
  });

  it('kek rotate re-wraps every key while the service keeps serving', async () => {
    const before = (await api('GET', '/api/users/me/ai-defaults')).body.api_key_fingerprint;
    // Workspaces created from the defaults, each sealing a copy of the defaults' key, while the
    // CLI rotates the master key in a process of its own.
    const answered: { status: number; at: number }[] = [];
    let done = false;
    let n = 0;
    const load = Array.from({ length: 4 }, async () => {
      while (!done) {
        const r = await api('POST', '/api/workspaces', { name: `during-rotation-${n++}` });
        answered.push({ status: r.status, at: Date.now() });
      }
    });
    const from = Date.now();
    const res = await rigboxAsync(['kek', 'rotate'], server.allEnv);
    const to = Date.now();
    done = true;
    await Promise.all(load);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/re-wrapped \d+ data keys under master key [0-9a-f]{16}/);
    const during = answered.filter((a) => a.at >= from && a.at <= to);
    expect(during.length, 'requests answered while the rotation ran').toBeGreaterThan(0);
    expect(answered.filter((a) => a.status !== 201)).toEqual([]);
    // Workspaces created from the defaults after rotation decrypt the re-wrapped key.
    const after = await api('POST', '/api/workspaces', { name: 'after-rotation' });
    expect(after.status).toBe(201);
    expect(after.body.ai_config.api_key_fingerprint).toBe(before);
    const again = rigbox(['kek', 'rotate'], server.allEnv);
    expect(again.stderr).toMatch(/re-wrapped \d+ data keys/);
  });
});
