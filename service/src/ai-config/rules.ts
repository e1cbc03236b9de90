import { ApiError } from '../errors.js';
import type { AiConfigRecord, AiMode } from '../storage/types.js';
import { type AiProviderId, aiProvider, checkApiKeyShape, MANAGED_PROVIDER_IDS } from './providers.js';
import type { AiConfigInput } from './schemas.js';

/** What a PUT asks to do with the stored key. */
export type KeyChange = { kind: 'keep' } | { kind: 'clear' } | { kind: 'set'; value: string };

export interface DesiredConfig {
  readonly mode: AiMode;
  readonly provider: AiProviderId;
  readonly model: string | null;
  readonly key: KeyChange;
}

/**
 * The rules of `PUT .../ai-config`, as a pure function of the current config and the request.
 * Every refusal is a 422 naming the field; no message repeats the key.
 */
export function decide(current: AiConfigRecord, input: AiConfigInput): DesiredConfig {
  const providerChanged = input.provider !== current.provider;
  const model = input.model === undefined ? (providerChanged ? null : current.model) : input.model;

  if (input.mode === 'managed') {
    if (typeof input.api_key === 'string') {
      throw new ApiError(
        422,
        'api_key_not_allowed',
        'api_key cannot be set in managed mode: managed mode uses Rigbox\'s own provider keys. Use mode "byok" to bring a key.',
        'api_key',
      );
    }
    if (!MANAGED_PROVIDER_IDS.includes(input.provider)) {
      throw new ApiError(
        422,
        'provider_not_managed',
        `provider "${input.provider}" is not available in managed mode (managed supports ${MANAGED_PROVIDER_IDS.join(', ')}); use mode "byok" with your own key`,
        'provider',
      );
    }
    // Switching to managed clears any stored key.
    return { mode: 'managed', provider: input.provider, model, key: { kind: 'clear' } };
  }

  if (typeof input.api_key === 'string') {
    const problem = checkApiKeyShape(input.provider, input.api_key);
    if (problem) throw new ApiError(422, 'api_key_invalid', problem, 'api_key');
    return { mode: 'byok', provider: input.provider, model, key: { kind: 'set', value: input.api_key } };
  }
  if (input.api_key === null)
    return { mode: 'byok', provider: input.provider, model, key: { kind: 'clear' } };

  // A stored key belongs to its provider: keeping it under another provider would send it to the wrong API.
  if (providerChanged && current.key !== null) {
    throw new ApiError(
      422,
      'api_key_required',
      `changing provider from "${current.provider}" to "${input.provider}" needs a new api_key: the stored key belongs to ${aiProvider(current.provider as AiProviderId).label}. Send api_key, or api_key: null to clear it.`,
      'api_key',
    );
  }
  return { mode: 'byok', provider: input.provider, model, key: { kind: 'keep' } };
}
