/**
 * The AI providers a workspace can use, with the environment variable their official SDK reads.
 * Managed mode (Rigbox pays) supports only a subset; byok supports all of them.
 */
export interface AiProviderInfo {
  readonly id: string;
  readonly label: string;
  /** Variable the provider's SDK reads its key from, e.g. OPENAI_API_KEY. */
  readonly envVar: string;
  /** Rigbox can serve this provider with platform keys and credits. */
  readonly managed: boolean;
  /** Known key prefixes; a key with none of them is obviously not this provider's. */
  readonly keyPrefixes: readonly string[];
}

export const AI_PROVIDERS = [
  {
    id: 'anthropic',
    label: 'Anthropic',
    envVar: 'ANTHROPIC_API_KEY',
    managed: true,
    keyPrefixes: ['sk-ant-'],
  },
  { id: 'openai', label: 'OpenAI', envVar: 'OPENAI_API_KEY', managed: true, keyPrefixes: ['sk-'] },
  { id: 'google', label: 'Google', envVar: 'GOOGLE_API_KEY', managed: true, keyPrefixes: ['AIza'] },
  { id: 'brave', label: 'Brave Search', envVar: 'BRAVE_API_KEY', managed: true, keyPrefixes: [] },
  { id: 'mistral', label: 'Mistral', envVar: 'MISTRAL_API_KEY', managed: false, keyPrefixes: [] },
  { id: 'groq', label: 'Groq', envVar: 'GROQ_API_KEY', managed: false, keyPrefixes: ['gsk_'] },
  { id: 'xai', label: 'xAI', envVar: 'XAI_API_KEY', managed: false, keyPrefixes: ['xai-'] },
  { id: 'deepseek', label: 'DeepSeek', envVar: 'DEEPSEEK_API_KEY', managed: false, keyPrefixes: ['sk-'] },
  {
    id: 'openrouter',
    label: 'OpenRouter',
    envVar: 'OPENROUTER_API_KEY',
    managed: false,
    keyPrefixes: ['sk-or-'],
  },
] as const satisfies readonly AiProviderInfo[];

export type AiProviderId = (typeof AI_PROVIDERS)[number]['id'];
export const AI_PROVIDER_IDS = AI_PROVIDERS.map((p) => p.id) as [AiProviderId, ...AiProviderId[]];
export const MANAGED_PROVIDER_IDS: readonly AiProviderId[] = AI_PROVIDERS.filter((p) => p.managed).map(
  (p) => p.id,
);

export function aiProvider(id: AiProviderId): AiProviderInfo {
  const found = AI_PROVIDERS.find((p) => p.id === id);
  if (!found) throw new Error(`unknown AI provider ${id}`);
  return found;
}

export const API_KEY_MAX_LENGTH = 512;
export const API_KEY_MIN_LENGTH = 8;

/**
 * Checks a key's shape without ever putting the key into the answer: the returned message is
 * safe to send back to the caller and to log.
 */
export function checkApiKeyShape(provider: AiProviderId, key: string): string | undefined {
  if (key.length === 0) return 'api_key is empty';
  if (key.trim().length === 0) return 'api_key is only whitespace';
  if (key.length > API_KEY_MAX_LENGTH) return `api_key is longer than ${API_KEY_MAX_LENGTH} characters`;
  if (/\s/.test(key)) return 'api_key contains whitespace';
  if (/[^\x21-\x7e]/.test(key)) return 'api_key contains characters outside printable ASCII';
  if (key.length < API_KEY_MIN_LENGTH) return `api_key is shorter than ${API_KEY_MIN_LENGTH} characters`;
  const info = aiProvider(provider);
  if (info.keyPrefixes.length > 0 && !info.keyPrefixes.some((p) => key.startsWith(p))) {
    return `api_key does not look like a ${info.label} key (expected it to start with ${info.keyPrefixes
      .map((p) => `"${p}"`)
      .join(' or ')})`;
  }
  // A key from another provider pasted by mistake, e.g. an Anthropic key for OpenAI.
  const other = AI_PROVIDERS.find(
    (p) =>
      p.id !== provider &&
      p.keyPrefixes.some((prefix) => key.startsWith(prefix) && !info.keyPrefixes.includes(prefix)),
  );
  if (other?.keyPrefixes.some((p) => p.length > Math.max(0, ...info.keyPrefixes.map((q) => q.length)))) {
    return `api_key looks like a ${other.label} key, not a ${info.label} key`;
  }
  return undefined;
}
