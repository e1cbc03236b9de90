/**
 * The AI providers Rigbox knows: one list, used by the service (validation, runtime env, gateway),
 * the Terraform provider (plan-time checks) and the construct library (synth-time checks).
 * Adding a provider is one entry here.
 */
export interface AiProviderInfo {
  /** The id as the API spells it (`provider`, `ai_provider` in Terraform). */
  readonly id: string;
  readonly label: string;
  /** The variable the provider's official SDK reads its key from, e.g. OPENAI_API_KEY. */
  readonly envVar: string;
  /** Rigbox serves this provider in managed mode, with its own keys and credits. */
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
export const AI_MODES = ['managed', 'byok'] as const;

export function findAiProvider(id: string): AiProviderInfo | undefined {
  return AI_PROVIDERS.find((p) => p.id === id);
}

export function aiProvider(id: AiProviderId): AiProviderInfo {
  const found = findAiProvider(id);
  if (!found) throw new Error(`unknown AI provider ${id}`);
  return found;
}

/** `managed mode serves anthropic, openai, google and brave`, for messages. */
export const MANAGED_PROVIDERS_TEXT = `${MANAGED_PROVIDER_IDS.slice(0, -1).join(', ')} and ${MANAGED_PROVIDER_IDS[MANAGED_PROVIDER_IDS.length - 1]}`;

/** Model ids like `gpt-4o` or `google/gemini-2.5-pro`. */
export const MODEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;
export const MODEL_RULE = 'may contain letters, digits and . _ : @ / - only (at most 128 characters)';

const a = (label: string) => `${/^[AEIOU]/i.test(label) ? 'an' : 'a'} ${label}`;

export const API_KEY_MAX_LENGTH = 512;
export const API_KEY_MIN_LENGTH = 8;

/**
 * Checks a key's shape without ever putting the key into the answer: the returned message is
 * safe to send back to the caller and to log.
 */
export function checkApiKeyShape(provider: string, key: string): string | undefined {
  if (key.length === 0) return 'api_key is empty';
  if (key.trim().length === 0) return 'api_key is only whitespace';
  if (key.length > API_KEY_MAX_LENGTH) return `api_key is longer than ${API_KEY_MAX_LENGTH} characters`;
  if (/\s/.test(key)) return 'api_key contains whitespace';
  if (/[^\x21-\x7e]/.test(key)) return 'api_key contains characters outside printable ASCII';
  if (key.length < API_KEY_MIN_LENGTH) return `api_key is shorter than ${API_KEY_MIN_LENGTH} characters`;
  const info = findAiProvider(provider);
  if (!info) return undefined;
  if (info.keyPrefixes.length > 0 && !info.keyPrefixes.some((p) => key.startsWith(p))) {
    return `api_key does not look like ${a(info.label)} key (expected it to start with ${info.keyPrefixes
      .map((p) => `"${p}"`)
      .join(' or ')})`;
  }
  // A key from another provider pasted by mistake, e.g. an Anthropic key for OpenAI.
  const other = AI_PROVIDERS.find(
    (p) =>
      p.id !== provider &&
      p.keyPrefixes.some(
        (prefix: string) =>
          key.startsWith(prefix) && !(info.keyPrefixes as readonly string[]).includes(prefix),
      ),
  );
  if (
    other?.keyPrefixes.some((p: string) => p.length > Math.max(0, ...info.keyPrefixes.map((q) => q.length)))
  ) {
    return `api_key looks like ${a(other.label)} key, not ${a(info.label)} key`;
  }
  return undefined;
}
