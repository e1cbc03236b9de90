export * from './ai-providers.js';
export * from './references.js';
