export * from './ai-config-resource';
export * from './ai-defaults';
export * from './ai-mode';
export * from './ai-provider';
export * from './api-key-source';
export * from './byok-policy';
export * from './provider';
export * from './workspace-ai-config';
