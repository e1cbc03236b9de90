export { AI_PROVIDERS, type AiProviderId, checkApiKeyShape } from './ai-config/providers.js';
export { AiConfigInput, AiConfigView } from './ai-config/schemas.js';
export { createLogger, scrub } from './logging/logger.js';
export { createService, type Service, type ServiceConfig } from './service.js';
