import { AiMode, AiProvider, ByokPolicy, KeySourceKind } from '@rigbox/cdktn-constructs';

/** The compliance team's rules for every Rigbox AI config in the app. */
export const platformPolicy = () =>
  new ByokPolicy({
    allowedModes: [AiMode.MANAGED, AiMode.BYOK],
    allowedAiProviders: [AiProvider.ANTHROPIC, AiProvider.OPENAI],
    allowedModels: ['gpt-4o', 'gpt-4.1', 'claude-sonnet-4-20250514'],
    allowedKeySourceKinds: [KeySourceKind.VAULT, KeySourceKind.SSM],
    allowedVaultPathPrefixes: ['secret/teams'],
    allowedSsmNamePrefixes: ['/rigbox'],
  });
