import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AI_PROVIDERS, checkApiKeyShape, MANAGED_PROVIDER_IDS } from './ai-providers.js';
import { checkSsmReference, checkVaultReference } from './references.js';

const REPO = join(import.meta.dirname, '../..');

describe('the one catalog', () => {
  it('is the copy the construct library compiles (catalog/scripts/sync-constructs.mjs keeps it in step)', () => {
    for (const file of ['ai-providers.ts', 'references.ts']) {
      const source = readFileSync(join(REPO, 'catalog/src', file), 'utf8');
      const copy = readFileSync(join(REPO, 'constructs/src/private/catalog', file), 'utf8');
      expect(
        copy.slice(copy.indexOf('\n') + 1),
        `constructs/src/private/catalog/${file} is stale: run npm run build`,
      ).toBe(source);
    }
  });

  it('has a static AiProvider member in the construct library for every provider (the API is typed there)', () => {
    const constructs = readFileSync(join(REPO, 'constructs/src/ai-provider.ts'), 'utf8');
    for (const p of AI_PROVIDERS) {
      expect(constructs, p.id).toContain(`new AiProvider('${p.id}')`);
    }
  });

  it('names the managed set by its flag, not its position', () => {
    expect(MANAGED_PROVIDER_IDS).toEqual(AI_PROVIDERS.filter((p) => p.managed).map((p) => p.id));
  });

  it('key shapes: a key of another provider is named as such, and the message never holds the key', () => {
    const key = 'sk-ant-api03-CANARYabcdefghijklmnop';
    const message = checkApiKeyShape('openai', key);
    expect(message).toBe('api_key looks like an Anthropic key, not an OpenAI key');
    expect(message).not.toContain(key);
    expect(checkApiKeyShape('openai', 'sk-proj-abcdefghijkl')).toBeUndefined();
  });

  it('reference rules: tokens (unknown values) pass, known values are checked', () => {
    const token = 'TOKEN/../mount';
    const known = (v: unknown) => v !== token;
    expect(checkVaultReference({ mount: token, path: 'app', field: 'k' }, known)).toBeUndefined();
    expect(checkVaultReference({ mount: token, path: 'app', field: 'k' })).toMatch(/Vault mount .* segment/);
    expect(checkVaultReference({ mount: 'secret', path: 'data/app', field: 'k' })).toMatch(/path "app"/);
    expect(checkVaultReference({ mount: 'secret', path: 'a/../../sys', field: 'k' })).toMatch(/".." segment/);
    expect(checkSsmReference({ name: 'a/b' })).toMatch(/must begin with "\//);
    expect(checkSsmReference({ name: '/a', version: 1, label: 'x' })).toMatch(/not both/);
  });
});
