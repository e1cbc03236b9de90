import { NullProvider } from '@cdktf/provider-null/lib/provider/index.js';
import { Resource } from '@cdktf/provider-null/lib/resource/index.js';
import {
  AiMode,
  AiProvider,
  ApiKeySource,
  RigboxAiDefaults,
  RigboxProvider,
  RigboxWorkspaceAiConfig,
} from '@rigbox/cdktf-constructs';
import { TerraformOutput, TerraformStack, TerraformVariable } from 'cdktf';
import type { Construct } from 'constructs';

/**
 * A platform team's Rigbox AI configs: defaults for new workspaces, three workspaces (BYOK from
 * Vault, BYOK from SSM, managed), and a null_resource that restarts the ML team's agents whenever
 * their key changes (a rotation in Vault, or a key replaced in Rigbox).
 *
 * Workspace ids are Terraform variables (`TF_VAR_ml_workspace_id`, ...). The Rigbox, Vault and AWS
 * settings come from the environment when Terraform runs, so no credential is in the config.
 */
export class AiConfigStack extends TerraformStack {
  readonly ml: RigboxWorkspaceAiConfig;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    new RigboxProvider(this, 'rigbox');
    new NullProvider(this, 'null');
    // @cdktf/provider-null pins the release it was generated from (3.2.4); any 3.3 release will do.
    this.addOverride('terraform.required_providers.null.version', '~> 3.3');

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

    // Replaced (and its provisioner run again) whenever the ML key's fingerprint changes.
    new Resource(this, 'restart_ml_agents', {
      triggers: { workspace_id: this.ml.workspaceId, api_key_fingerprint: this.ml.apiKeyFingerprint },
      provisioners: [
        { type: 'local-exec', command: 'echo "ML workspace key changed: restarting its agents"' },
      ],
    });

    new TerraformOutput(this, 'ml_api_key_fingerprint', { value: this.ml.apiKeyFingerprint });
    new TerraformOutput(this, 'ml_key_source_version', { value: this.ml.sourceVersion });
  }
}
