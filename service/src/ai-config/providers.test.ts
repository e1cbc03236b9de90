import { describe, expect, it } from 'vitest';
import { AI_PROVIDERS, checkApiKeyShape } from './providers.js';

describe('provider table', () => {
  it('covers the byok providers with their SDK variables', () => {
    const env = Object.fromEntries(AI_PROVIDERS.map((p) => [p.id, p.envVar]));
    expect(env).toMatchObject({
      anthropic: 'ANTHROPIC_API_KEY',
      openai: 'OPENAI_API_KEY',
      google: 'GOOGLE_API_KEY',
      mistral: 'MISTRAL_API_KEY',
      groq: 'GROQ_API_KEY',
      xai: 'XAI_API_KEY',
      deepseek: 'DEEPSEEK_API_KEY',
      openrouter: 'OPENROUTER_API_KEY',
    });
    expect(AI_PROVIDERS.filter((p) => p.managed).map((p) => p.id)).toEqual([
      'anthropic',
      'openai',
      'google',
      'brave',
    ]);
  });
});

describe('key shape checks', () => {
  it.each([
    ['anthropic', 'sk-ant-api03-abcdefgh'],
    ['openai', 'sk-proj-abcdefgh'],
    ['openai', 'sk-abcdefghijkl'],
    ['google', 'AIzaSyabcdefghijkl'],
    ['groq', 'gsk_abcdefgh'],
    ['openrouter', 'sk-or-v1-abcdefgh'],
    ['mistral', 'abcdefghijklmnopqrstuvwxyz012345'],
  ] as const)('accepts a %s key', (provider, key) => {
    expect(checkApiKeyShape(provider, key)).toBeUndefined();
  });

  it.each([
    ['anthropic', 'sk-proj-abcdefgh', /Anthropic/],
    ['openai', 'sk-ant-api03-abcdefgh', /looks like an Anthropic key/],
    ['openai', 'sk-or-v1-abcdefgh', /OpenRouter/],
    ['google', 'sk-abcdefghijk', /Google/],
    ['openai', '', /empty/],
    ['openai', '    ', /whitespace/],
    ['openai', 'sk-abc\u0000defgh', /printable/],
    ['openai', 'sk-ab', /shorter/],
    ['openai', `sk-${'a'.repeat(600)}`, /longer/],
  ] as const)('refuses %s key %#', (provider, key, message) => {
    const problem = checkApiKeyShape(provider, key);
    expect(problem).toMatch(message);
    if (key.trim().length > 3) expect(problem).not.toContain(key.trim());
  });
});
