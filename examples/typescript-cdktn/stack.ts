import {
  AiMode,
  AiProvider,
  ApiKeySource,
  RigboxAiDefaults,
  RigboxProvider,
  RigboxWorkspaceAiConfig,
} from '@rigbox/cdktn-constructs';
import { TerraformOutput, TerraformStack, TerraformVariable } from 'cdktn';
import type { Construct } from 'constructs';

/**
 * examples/typescript for cdktn: a platform team's Rigbox AI configs, i.e. defaults for new
 * workspaces and three workspaces (BYOK from Vault, BYOK from SSM, managed). The cdktf example's
 * null_resource is left out: there is no @cdktn/provider-null on npm (see README.md).
 *
 * Workspace ids are Terraform variables (`TF_VAR_ml_workspace_id`, ...). The Rigbox, Vault and AWS
 * settings come from the environment when Terraform runs, so no credential is in the config.
 */
export class AiConfigStack extends TerraformStack {
  readonly ml: RigboxWorkspaceAiConfig;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    new RigboxProvider(this, 'rigbox');

    const workspaceId = (team: string) =>
      new TerraformVariable(this, `${team}_workspace_id`, {
        type: 'string',
        description: `The Rigbox workspace of the ${team} team`,
      }).stringValue;

    new RigboxAiDefaults(this, 'defaults', {
      mode: AiMode.BYOK,
      aiProvider: AiProvider.ANTHROPIC,
      model: 'claude-sonnet-4-20250514',
      apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/platform/anthropic' }),
    });

    this.ml = new RigboxWorkspaceAiConfig(this, 'ml', {
      workspaceId: workspaceId('ml'),
      mode: AiMode.BYOK,
      aiProvider: AiProvider.OPENAI,
      model: 'gpt-4o',
      apiKeySource: ApiKeySource.fromVault({ mount: 'secret', path: 'teams/ml/openai', field: 'api_key' }),
    });

    new RigboxWorkspaceAiConfig(this, 'research', {
      workspaceId: workspaceId('research'),
      mode: AiMode.BYOK,
      aiProvider: AiProvider.ANTHROPIC,
      model: 'claude-sonnet-4-20250514',
      apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/research/anthropic' }),
    });

    new RigboxWorkspaceAiConfig(this, 'support', {
      workspaceId: workspaceId('support'),
      mode: AiMode.MANAGED,
      aiProvider: AiProvider.ANTHROPIC,
      model: 'claude-sonnet-4-20250514',
    });

    new TerraformOutput(this, 'ml_api_key_fingerprint', { value: this.ml.apiKeyFingerprint });
    new TerraformOutput(this, 'ml_key_source_version', { value: this.ml.sourceVersion });
  }
}
