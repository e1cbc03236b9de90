import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { freshStore, type TestStore } from '../../../test/support/harness.js';
import { AuditChain } from '../audit/chain.js';
import { newId } from '../ids.js';
import { openStorage } from './open.js';
import type { SqliteStorage } from './sqlite.js';
import type { AiConfigRecord, AuditEvent, ConfigOwner, Storage } from './types.js';

// Several instances on one store: service instances behind a load balancer (PostgreSQL), or the CLI
// writing beside a running server (SQLite). Runs once per backend, like every service test.

let store: TestStore;
const opened: Storage[] = [];
const now = '2026-01-02T03:04:05.000Z';

beforeEach(async () => {
  store = await freshStore();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await store.remove();
});

/** Opens `n` instances on the same store at once, as instances that start together would. */
const instances = (n: number) =>
  Promise.all(
    Array.from({ length: n }, async () => {
      const storage = await openStorage(store);
      storage.setAuditChain(new AuditChain(randomBytes(32)));
      opened.push(storage);
      return storage;
    }),
  );

const config = (revision: number, model: string | null = null): AiConfigRecord => ({
  mode: 'managed',
  provider: 'anthropic',
  model,
  key: null,
  keyFingerprint: null,
  keyUpdatedAt: null,
  revision,
  updatedAt: now,
});

const audit = (owner: ConfigOwner, action: string, revision: number): AuditEvent => ({
  id: newId('aud'),
  ownerKind: owner.kind,
  ownerId: owner.id,
  actorUserId: 'usr_test',
  actorName: 'alice',
  action,
  changes: {},
  keyEvent: null,
  revision,
  at: now,
});

it('runs on the backend the test project names', async () => {
  const [storage] = await instances(1);
  expect(storage!.kind).toBe(process.env.RIGBOX_TEST_DATABASE_URL ? 'postgres' : 'sqlite');
});

it('migrates once when instances start at once, and they share one store', async () => {
  const [a, b, c, d] = await instances(4);
  const alice = await a!.ensureUser('alice', now);
  expect(await d!.findUserByName('alice')).toEqual(alice);
  // A user that exists already is returned as it is, whichever instance asks.
  expect(await b!.ensureUser('alice', '2030-01-01T00:00:00.000Z')).toEqual(alice);
  expect(await c!.findUserByName('bob')).toBeUndefined();
});

it('lets exactly one of several instances win a compare-and-set', async () => {
  const all = await instances(3);
  const [a, b, c] = all;
  const user = await a!.ensureUser('alice', now);
  const ws = { id: newId('ws'), userId: user.id, name: 'w', createdAt: now };
  const owner: ConfigOwner = { kind: 'workspace', id: ws.id };
  await a!.createWorkspace(ws, config(1), audit(owner, 'workspace.created', 1));

  const writers = [...all, ...all];
  const results = await Promise.all(
    writers.map((s, i) =>
      s.putAiConfig(owner, config(2, `model-${i}`), 1, audit(owner, 'ai_config.updated', 2)),
    ),
  );
  expect(results.filter(Boolean)).toHaveLength(1);
  expect(await c!.getAiConfig(owner)).toMatchObject({ revision: 2, model: `model-${results.indexOf(true)}` });
  expect((await b!.listAudit(owner, { limit: 10 })).items.map((e) => e.action)).toEqual([
    'ai_config.updated',
    'workspace.created',
  ]);

  // The first write of a row (expected revision 0) too.
  const defaults: ConfigOwner = { kind: 'defaults', id: user.id };
  const first = await Promise.all(
    writers.map((s) => s.putAiConfig(defaults, config(1), 0, audit(defaults, 'ai_defaults.updated', 1))),
  );
  expect(first.filter(Boolean)).toHaveLength(1);
  expect((await a!.listAudit(defaults, { limit: 10 })).items).toHaveLength(1);
});

it('keeps the first of racing service secrets and hands it to every instance', async () => {
  const all = await instances(3);
  const got = await Promise.all(
    all.map((s, i) =>
      s.insertServiceSecret('race', { ciphertext: `c${i}`, wrappedDek: `w${i}`, kekId: 'k' }, now),
    ),
  );
  expect(new Set(got.map((e) => e.ciphertext)).size).toBe(1);
  expect(await all[0]!.getServiceSecret('race')).toEqual(got[0]);
});

it("deletes a workspace's runtime and gateway tokens and key bindings with it, and nothing else", async () => {
  const [s] = await instances(1);
  const user = await s!.ensureUser('alice', now);
  const make = async (name: string) => {
    const ws = { id: newId('ws'), userId: user.id, name, createdAt: now };
    await s!.createWorkspace(ws, config(1), audit({ kind: 'workspace', id: ws.id }, 'workspace.created', 1));
    return ws.id;
  };
  const [gone, kept] = [await make('gone'), await make('kept')];
  const token = (
    hash: string,
    kind: 'user' | 'runtime' | 'runtime_used' | 'gateway',
    workspaceId: string | null,
  ) =>
    s!.insertToken({
      id: newId('tok'),
      userId: user.id,
      tokenHash: hash,
      kind,
      workspaceId,
      expiresAt: null,
      createdAt: now,
    });
  await token('user', 'user', null);
  for (const id of [gone, kept]) {
    await token(`runtime-${id}`, 'runtime', id);
    await token(`used-${id}`, 'runtime_used', id);
    await token(`gateway-${id}`, 'gateway', id);
    await s!.bindRuntimeKey('fp', id, now);
  }
  expect(
    await s!.deleteWorkspace(user.id, gone, audit({ kind: 'workspace', id: gone }, 'workspace.deleted', 2)),
  ).toBe(true);
  for (const prefix of ['runtime', 'used', 'gateway']) {
    expect(await s!.findToken(`${prefix}-${gone}`)).toBeUndefined();
    expect(await s!.findToken(`${prefix}-${kept}`)).toBeDefined();
  }
  expect(await s!.findToken('user')).toBeDefined();
  expect((await s!.findKeyCallers('fp')).map((c) => c.workspaceId)).toEqual([kept]);
});

// SQLite keeps a workspace's config as last read while the database is unchanged: a write by this
// instance, by another one on the same file, or rolled back must show on the very next read.
it('reads a workspace config as last written, by this instance or another, at once', async () => {
  const [a, b] = await instances(2);
  const user = await a!.ensureUser('alice', now);
  const ws = { id: newId('ws'), userId: user.id, name: 'w', createdAt: now };
  const owner: ConfigOwner = { kind: 'workspace', id: ws.id };
  await a!.createWorkspace(ws, config(1), audit(owner, 'workspace.created', 1));
  const read = async (s: Storage) => (await s.getWorkspaceAiConfig(user.id, ws.id))?.config;

  expect(await read(a!)).toMatchObject({ revision: 1, model: null });
  expect(await read(b!)).toMatchObject({ revision: 1, model: null });
  // Read twice, the same answer.
  const cached = await a!.getWorkspaceAiConfig(user.id, ws.id);
  expect(cached?.config).toEqual(await read(a!));
  // SQLite answers again from its cache: the same object, until something changes, frozen.
  if (a!.kind === 'sqlite') {
    expect(await a!.getWorkspaceAiConfig(user.id, ws.id)).toBe(cached);
    expect(() => Object.assign(cached!.config, { model: 'x' })).toThrow(TypeError);
  }
  // Someone else's account does not find it, cached or not.
  expect(await a!.getWorkspaceAiConfig('usr_other', ws.id)).toBeUndefined();

  // Written by this instance.
  expect(await a!.putAiConfig(owner, config(2, 'one'), 1, audit(owner, 'ai_config.updated', 2))).toBe(true);
  expect(await read(a!)).toMatchObject({ revision: 2, model: 'one' });
  expect(await read(a!)).toMatchObject({ revision: 2, model: 'one' });
  // Written by another instance (another connection to the same file, or another database client).
  expect(await b!.putAiConfig(owner, config(3, 'two'), 2, audit(owner, 'ai_config.updated', 3))).toBe(true);
  expect(await read(a!)).toMatchObject({ revision: 3, model: 'two' });
  expect(await read(b!)).toMatchObject({ revision: 3, model: 'two' });
  // A write refused by compare-and-set changes nothing.
  expect(await a!.putAiConfig(owner, config(3, 'late'), 1, audit(owner, 'ai_config.updated', 3))).toBe(false);
  expect(await read(a!)).toMatchObject({ revision: 3, model: 'two' });
  // Deleted by another instance.
  expect(await b!.deleteWorkspace(user.id, ws.id, audit(owner, 'workspace.deleted', 4))).toBe(true);
  expect(await a!.getWorkspaceAiConfig(user.id, ws.id)).toBeUndefined();
});

// The read cache against the writes that are easiest to miss: one rolled back after it changed the
// row, a workspace deleted and created again under its id, and another process on the same file.
it('reads a workspace config as committed after a rollback, a delete and re-create, and a write by another process', async () => {
  const [a, b] = await instances(2);
  const user = await a!.ensureUser('alice', now);
  const ws = { id: newId('ws'), userId: user.id, name: 'w', createdAt: now };
  const owner: ConfigOwner = { kind: 'workspace', id: ws.id };
  const created = audit(owner, 'workspace.created', 1);
  await a!.createWorkspace(ws, config(1), created);
  const read = async (s: Storage) => (await s.getWorkspaceAiConfig(user.id, ws.id))?.config;
  expect(await read(a!)).toMatchObject({ revision: 1, model: null });
  expect(await read(a!)).toMatchObject({ revision: 1, model: null });

  // The config row is updated, then its audit event (an id already taken) fails: all rolled back.
  await expect(a!.putAiConfig(owner, config(2, 'rolled-back'), 1, created)).rejects.toThrow();
  expect(await read(a!)).toMatchObject({ revision: 1, model: null });

  // Deleted and created again under the same id, by this instance and by another one.
  expect(await a!.deleteWorkspace(user.id, ws.id, audit(owner, 'workspace.deleted', 1))).toBe(true);
  expect(await read(a!)).toBeUndefined();
  await a!.createWorkspace(ws, config(1, 'again'), audit(owner, 'workspace.created', 1));
  expect(await read(a!)).toMatchObject({ revision: 1, model: 'again' });
  expect(await read(a!)).toMatchObject({ revision: 1, model: 'again' });
  expect(await b!.deleteWorkspace(user.id, ws.id, audit(owner, 'workspace.deleted', 1))).toBe(true);
  await b!.createWorkspace(ws, config(1, 'by-b'), audit(owner, 'workspace.created', 1));
  expect(await read(a!)).toMatchObject({ revision: 1, model: 'by-b' });

  if (a!.kind !== 'sqlite') return;
  // Another process on the same file (as `rigbox kek rotate` beside a running server).
  const file = (a as SqliteStorage).file;
  const script = `const D = require('better-sqlite3'); const d = new D(process.argv[1]);
    d.prepare("UPDATE ai_configs SET model = 'by-process', revision = 2 WHERE owner_kind = 'workspace' AND owner_id = ?").run(process.argv[2]);
    d.close();`;
  const run = spawnSync(process.execPath, ['-e', script, file, ws.id], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(await read(a!)).toMatchObject({ revision: 2, model: 'by-process' });
});
