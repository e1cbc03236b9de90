import {
  AiMode,
  AiProvider,
  ApiKeySource,
  RigboxProvider,
  type RigboxWorkspaceAiConfigProps,
} from '@rigbox/cdktf-constructs';
import { TerraformStack, Testing } from 'cdktf';

/** A stack with the Rigbox provider, as every test config needs one for `tofu validate`. */
export function stackWithProvider(): TerraformStack {
  const stack = new TerraformStack(Testing.app(), 'stack');
  new RigboxProvider(stack, 'rigbox');
  return stack;
}

/** A valid BYOK workspace config from Vault; tests override what they are about. */
export function byokFromVault(
  overrides: Partial<RigboxWorkspaceAiConfigProps> = {},
): RigboxWorkspaceAiConfigProps {
  return {
    workspaceId: 'ws_ml',
    mode: AiMode.BYOK,
    aiProvider: AiProvider.OPENAI,
    model: 'gpt-4o',
    apiKeySource: ApiKeySource.fromVault({ mount: 'secret', path: 'teams/ml/openai', field: 'api_key' }),
    ...overrides,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests walk parsed Terraform JSON by field name.
type Json = Record<string, any>;

/** The synthesized attributes of one resource. */
export function resourceOf(synth: string, type: string, name: string): Json {
  const resource = (JSON.parse(synth) as Json).resource?.[type]?.[name];
  if (!resource) throw new Error(`no ${type}.${name} in:\n${synth}`);
  return resource;
}
