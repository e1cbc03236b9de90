import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { canaryKey, type Harness, startHarness } from '../../../test/support/harness.js';
import { Envelopes } from './envelope.js';
import { Keyring, kekId } from './keyring.js';
import { rewrapAll } from './rotate.js';

let h: Harness;
let token: string;
let userId: string;
const masterKey = randomBytes(32);

beforeEach(async () => {
  h = await startHarness({ env: { RIGBOX_MASTER_KEY: masterKey.toString('hex') } });
  token = await h.token('alice');
  userId = (await h.service.storage.findUserByName('alice'))!.id;
});
afterEach(() => h.close());

const inject = (method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown) =>
  h.service.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });

async function byokWorkspace(key: string) {
  const ws = (
    await inject('POST', '/api/workspaces', {
      name: 'w',
      ai_config: { mode: 'byok', provider: 'anthropic', api_key: key },
    })
  ).json();
  return ws.id as string;
}

/** An attacker with write access to the database copies workspace `from`'s key envelope into `to`. */
async function copyEnvelope(from: string, to: Parameters<Harness['tamperConfigRow']>[0]) {
  const row = (await h.rawConfigRow({ kind: 'workspace', id: from }))!;
  await h.tamperConfigRow(to, {
    key_ciphertext: String(row.key_ciphertext),
    key_wrapped_dek: String(row.key_wrapped_dek),
    key_kek_id: String(row.key_kek_id),
  });
}

it('a key moved from one workspace into another row does not open, is reported, and is never used', async () => {
  const canary = canaryKey();
  const a = await byokWorkspace(canary);
  await inject('PUT', '/api/users/me/ai-defaults', {
    mode: 'byok',
    provider: 'anthropic',
    api_key: canaryKey(),
  });
  // An attacker with write access to the database copies workspace A's ciphertext into the defaults row.
  await copyEnvelope(a, { kind: 'defaults', id: userId });
  // The defaults report the key as unreadable, with no fingerprint copied along with it.
  const defaults = (await inject('GET', '/api/users/me/ai-defaults')).json();
  expect(defaults).toMatchObject({
    api_key_set: false,
    api_key_state: 'unreadable',
    api_key_fingerprint: null,
  });
  const created = await inject('POST', '/api/workspaces', { name: 'from-defaults' });
  expect(created.statusCode).toBe(409);
  expect(created.json()).toMatchObject({ code: 'api_key_unreadable' });
  expect(created.body).not.toContain(canary);
  // Nothing half-written: only workspace A exists.
  expect((await inject('GET', '/api/workspaces')).json().workspaces).toHaveLength(1);
  // Setting the key again makes the defaults usable, and a new workspace inherits them.
  await inject('PUT', '/api/users/me/ai-defaults', {
    mode: 'byok',
    provider: 'anthropic',
    api_key: canaryKey(),
  });
  expect((await inject('POST', '/api/workspaces', { name: 'from-defaults' })).statusCode).toBe(201);
});

it('a runtime asking for a key that does not open gets 409 api_key_unreadable, an audit event and a log line naming the record', async () => {
  const canary = canaryKey();
  const a = await byokWorkspace(canary);
  const b = await byokWorkspace(canaryKey());
  await copyEnvelope(a, { kind: 'workspace', id: b });
  const view = (await inject('GET', `/api/workspaces/${b}/ai-config`)).json();
  expect(view).toMatchObject({ api_key_set: false, api_key_state: 'unreadable', api_key_fingerprint: null });
  expect((await inject('GET', `/api/workspaces/${a}/ai-config`)).json()).toMatchObject({
    api_key_set: true,
    api_key_state: 'set',
  });
  for (let i = 0; i < 2; i++) {
    const minted = (await inject('POST', `/api/workspaces/${b}/runtime-tokens`)).json();
    const env = await h.service.app.inject({
      method: 'GET',
      url: '/api/runtime/env',
      headers: { authorization: `Bearer ${minted.token}` },
    });
    expect(env.statusCode).toBe(409);
    expect(env.json()).toMatchObject({ code: 'api_key_unreadable' });
    expect(env.body).not.toContain(canary);
  }
  expect(h.logs.text).toMatch(/stored key failed to decrypt/);
  expect(h.logs.text).toContain(`workspace:${b}`);
  expect(h.logs.text).not.toContain(canary);
  const audit = (await inject('GET', `/api/workspaces/${b}/audit`)).json();
  const events = (audit.events ?? audit) as { action: string }[];
  // Reported once, however often a runtime retries.
  expect(events.filter((e) => e.action === 'ai_config.key_unreadable')).toHaveLength(1);
});

it('a flipped ciphertext byte fails decryption and KEK rotation reports the record without touching it', async () => {
  const a = await byokWorkspace(canaryKey());
  const b = await byokWorkspace(canaryKey());
  const row = (await h.rawConfigRow({ kind: 'workspace', id: a }))!;
  const raw = Buffer.from(String(row.key_ciphertext), 'base64');
  raw[raw.length - 1]! ^= 0x80;
  await h.tamperConfigRow({ kind: 'workspace', id: a }, { key_ciphertext: raw.toString('base64') });
  const config = await h.service.configs.current({ kind: 'workspace', id: a });
  expect(() => h.service.configs.openKey({ kind: 'workspace', id: a }, config)).toThrow(/integrity check/);

  const next = randomBytes(32);
  const rotated = new Envelopes(
    new Keyring(
      [next, masterKey].map((key) => ({ id: kekId(key), key })),
      { description: 'test', file: undefined, generated: false },
    ),
  );
  // The wrapped data key is intact, so the tampered record re-wraps; its ciphertext still fails to open.
  const report = await rewrapAll(h.service.storage, rotated);
  expect(report.failed).toEqual([]);
  expect(report.rewrapped).toBe(4); // the two workspaces' keys, the fingerprint and audit chain secrets
  const cfgB = await h.service.configs.current({ kind: 'workspace', id: b });
  expect(rotated.open(`workspace:${b}`, cfgB.key!)).toMatch(/^sk-ant-api03-CANARY/);
  const cfgA = await h.service.configs.current({ kind: 'workspace', id: a });
  expect(() => rotated.open(`workspace:${a}`, cfgA.key!)).toThrow(/integrity check/);

  // A wrapped key that does not open is reported by id and left as it was.
  await h.tamperConfigRow({ kind: 'workspace', id: b }, { key_wrapped_dek: String(row.key_wrapped_dek) });
  const again = await rewrapAll(
    h.service.storage,
    new Envelopes(
      new Keyring(
        [
          { id: kekId(randomBytes(32)), key: randomBytes(32) },
          { id: kekId(next), key: next },
        ],
        { description: 't', file: undefined, generated: false },
      ),
    ),
  );
  expect(again.failed).toEqual([`workspace:${b}`]);
});

it('a key that does not open is sealed again when the same key is set again, as the 409 tells the caller to do', async () => {
  const canary = canaryKey();
  const a = await byokWorkspace(canaryKey());
  const b = await byokWorkspace(canary);
  // B's envelope replaced by A's: it no longer opens, while B's fingerprint still names B's key.
  await copyEnvelope(a, { kind: 'workspace', id: b });
  expect((await inject('GET', `/api/workspaces/${b}/ai-config`)).json()).toMatchObject({
    api_key_state: 'unreadable',
  });
  const put = await inject('PUT', `/api/workspaces/${b}/ai-config`, {
    mode: 'byok',
    provider: 'anthropic',
    api_key: canary,
  });
  expect(put.statusCode).toBe(200);
  expect(put.json()).toMatchObject({ api_key_set: true, api_key_state: 'set' });
  expect((await inject('GET', `/api/workspaces/${b}/ai-config`)).json()).toMatchObject({
    api_key_state: 'set',
  });
  const audit = (await inject('GET', `/api/workspaces/${b}/audit`)).json();
  expect((audit.events ?? audit)[0]).toMatchObject({ action: 'ai_config.updated', key_event: 'set' });
  const minted = (await inject('POST', `/api/workspaces/${b}/runtime-tokens`)).json();
  const env = await h.service.app.inject({
    method: 'GET',
    url: '/api/runtime/env',
    headers: { authorization: `Bearer ${minted.token}` },
  });
  expect(env.statusCode).toBe(200);
  expect(env.body).toContain(canary);
});

it("a key's state follows the master keys configured now: a key file changed while serving is read again", async () => {
  const older = randomBytes(32);
  const newer = randomBytes(32);
  const file = join(h.dataDir, 'master-keys');
  // Replaced by rename, as `rigbox kek rotate` and editors do.
  const keys = (...k: Buffer[]) => {
    writeFileSync(`${file}.tmp`, `${k.map((b) => b.toString('hex')).join('\n')}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  };
  keys(older);
  const served = await startHarness({ env: { RIGBOX_MASTER_KEY_FILE: file } });
  try {
    const bearer = { authorization: `Bearer ${await served.token('bob')}` };
    const ws = (
      await served.service.app.inject({
        method: 'POST',
        url: '/api/workspaces',
        headers: bearer,
        payload: { name: 'w', ai_config: { mode: 'byok', provider: 'anthropic', api_key: canaryKey() } },
      })
    ).json().id as string;
    const state = async () =>
      (await served.service.app.inject({ url: `/api/workspaces/${ws}/ai-config`, headers: bearer })).json()
        .api_key_state;
    // Read twice: the second answer comes from what the first found.
    expect(await state()).toBe('set');
    expect(await state()).toBe('set');
    // The key it was sealed under is taken out of the file: the stored key no longer opens.
    keys(newer);
    expect(await state()).toBe('unreadable');
    expect(await state()).toBe('unreadable');
    // Put back (after the new primary): it opens again.
    keys(newer, older);
    expect(await state()).toBe('set');
  } finally {
    await served.close();
  }
});
