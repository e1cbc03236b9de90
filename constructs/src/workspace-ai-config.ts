import { stringToTerraform } from 'cdktf';
import type { Construct } from 'constructs';
import { type AiConfigProps, AiConfigResource } from './ai-config-resource';
import { isToken } from './private/checks';
import { hclString } from './private/hcl';

/** A Rigbox workspace's AI config. */
export interface RigboxWorkspaceAiConfigProps extends AiConfigProps {
  /**
   * The workspace whose AI config this is. Changing it replaces the resource.
   */
  readonly workspaceId: string;
}

/**
 * A Rigbox workspace's AI config (`rigbox_workspace_ai_config`): managed mode, or BYOK with the
 * key read from Vault or AWS SSM at apply time.
 *
 * The key is never in the synthesized configuration, the plan or the state. Drift (a change made
 * by hand in Rigbox, another key set out of band, a rotation at the source) shows in plan.
 * Destroying the resource clears the stored key in Rigbox.
 *
 * @example
 *
 * new RigboxWorkspaceAiConfig(this, 'ml', {
 *   workspaceId: 'ws_123',
 *   mode: AiMode.BYOK,
 *   aiProvider: AiProvider.OPENAI,
 *   model: 'gpt-4o',
 *   apiKeySource: ApiKeySource.fromVault({ mount: 'secret', path: 'teams/ml/openai', field: 'api_key' }),
 * });
 */
export class RigboxWorkspaceAiConfig extends AiConfigResource {
  /** The resource's Terraform type name. */
  public static readonly tfResourceType = 'rigbox_workspace_ai_config';

  private readonly configuredWorkspaceId: string;

  /**
   * @param scope the stack (or other scope) to define the config in
   * @param id the construct id, unique among its siblings (it names the Terraform resource)
   * @param props the workspace and its AI config
   */
  constructor(scope: Construct, id: string, props: RigboxWorkspaceAiConfigProps) {
    super(scope, id, RigboxWorkspaceAiConfig.tfResourceType, props);
    if (
      !isToken(props.workspaceId) &&
      (typeof props.workspaceId !== 'string' || props.workspaceId.trim() === '')
    ) {
      throw new Error(`${RigboxWorkspaceAiConfig.tfResourceType} "${this.node.path}": workspaceId is empty`);
    }
    this.configuredWorkspaceId = props.workspaceId;
  }

  /** The workspace id, as a reference to the resource's attribute. */
  public get workspaceId(): string {
    return this.getStringAttribute('workspace_id');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return { workspace_id: stringToTerraform(this.configuredWorkspaceId), ...super.synthesizeAttributes() };
  }

  protected override synthesizeHclAttributes(): { [name: string]: unknown } {
    return { workspace_id: hclString(this.configuredWorkspaceId), ...super.synthesizeHclAttributes() };
  }
}
