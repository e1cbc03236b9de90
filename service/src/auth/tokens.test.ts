import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshStore, type TestStore } from '../../../test/support/harness.js';
import { AuditChain } from '../audit/chain.js';
import { hashToken, newId } from '../ids.js';
import { openStorage } from '../storage/open.js';
import type { Storage } from '../storage/types.js';
import { createUserToken, TOKEN_CACHE_MS, TokenCache } from './tokens.js';

describe('recently found tokens', () => {
  let store: TestStore;
  let storage: Storage;
  let clock: number;
  let lookups: number;
  let cache: TokenCache;

  beforeEach(async () => {
    store = await freshStore();
    storage = await openStorage({ dataDir: store.dataDir, databaseUrl: store.databaseUrl });
    clock = 1_000_000;
    lookups = 0;
    const counting = Object.create(storage, {
      findToken: {
        value: (hash: string) => {
          lookups++;
          return storage.findToken(hash);
        },
      },
    }) as Storage;
    cache = new TokenCache(counting, () => clock);
  });
  afterEach(async () => {
    await storage.close();
    await store.remove();
  });

  it('reads storage once per token within the window, again after it', async () => {
    const { token, user } = await createUserToken(storage, 'alice');
    const hash = hashToken(token);
    expect((await cache.find(hash))?.user.id).toBe(user.id);
    clock += TOKEN_CACHE_MS - 1;
    await cache.find(hash);
    expect(lookups).toBe(1);
    clock += 1;
    await cache.find(hash);
    expect(lookups).toBe(2);
  });

  it('drops what it found once this instance deletes or uses a token: the change binds the next request', async () => {
    const { user } = await createUserToken(storage, 'alice');
    const now = new Date().toISOString();
    const ws = { id: newId('ws'), userId: user.id, name: 'w', createdAt: now };
    const owner = { kind: 'workspace' as const, id: ws.id };
    const audit = (action: string) => ({
      id: newId('evt'),
      ownerKind: owner.kind,
      ownerId: owner.id,
      actorUserId: user.id,
      actorName: user.name,
      action,
      changes: {},
      keyEvent: null,
      revision: null,
      at: now,
    });
    const config = {
      mode: 'managed' as const,
      provider: 'anthropic',
      model: null,
      key: null,
      keyFingerprint: null,
      keyUpdatedAt: null,
      revision: 1,
      updatedAt: now,
    };
    storage.setAuditChain(new AuditChain(randomBytes(32)));
    await storage.createWorkspace(ws, config, audit('workspace.created'));
    const runtime = (hash: string) =>
      storage.insertToken({
        id: newId('tok'),
        userId: user.id,
        tokenHash: hash,
        kind: 'runtime',
        workspaceId: ws.id,
        expiresAt: null,
        createdAt: now,
      });
    await runtime('used-once');
    await runtime('deleted-with-workspace');

    // Used: the cached 'runtime' gives way to storage's 'runtime_used' within the window.
    expect((await cache.find('used-once'))?.token.kind).toBe('runtime');
    expect(await storage.consumeRuntimeToken('used-once')).toBe(true);
    expect((await cache.find('used-once'))?.token.kind).toBe('runtime_used');

    // Deleted with its workspace: gone on the next lookup, not TOKEN_CACHE_MS later.
    expect(await cache.find('deleted-with-workspace')).toBeDefined();
    expect(await cache.find('deleted-with-workspace')).toBeDefined();
    const before = lookups;
    expect(await storage.deleteWorkspace(user.id, ws.id, audit('workspace.deleted'))).toBe(true);
    expect(await cache.find('deleted-with-workspace')).toBeUndefined();
    expect(lookups).toBe(before + 1);
  });

  it('never keeps an unknown token: each attempt reaches storage', async () => {
    const hash = hashToken('rbx_not-a-token-that-exists-anywhere');
    expect(await cache.find(hash)).toBeUndefined();
    expect(await cache.find(hash)).toBeUndefined();
    expect(lookups).toBe(2);
  });
});
