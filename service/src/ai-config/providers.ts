/**
 * The AI providers a workspace can use, from the one catalog shared with the Terraform provider
 * and the construct library (catalog/). Managed mode (Rigbox pays) supports a subset; byok all.
 */
export {
  AI_PROVIDER_IDS,
  AI_PROVIDERS,
  type AiProviderId,
  type AiProviderInfo,
  API_KEY_MAX_LENGTH,
  API_KEY_MIN_LENGTH,
  aiProvider,
  checkApiKeyShape,
  MANAGED_PROVIDER_IDS,
} from '@rigbox/catalog';
