import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshStore, type TestStore } from '../../../test/support/harness.js';
import { hashToken } from '../ids.js';
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

  it('never keeps an unknown token: each attempt reaches storage', async () => {
    const hash = hashToken('rbx_not-a-token-that-exists-anywhere');
    expect(await cache.find(hash)).toBeUndefined();
    expect(await cache.find(hash)).toBeUndefined();
    expect(lookups).toBe(2);
  });
});
