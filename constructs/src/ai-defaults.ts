import type { Construct } from 'constructs';
import { type AiConfigProps, AiConfigResource } from './ai-config-resource';

/** The AI defaults that new workspaces start from. */
export interface RigboxAiDefaultsProps extends AiConfigProps {}

/**
 * The caller's AI defaults (`rigbox_ai_defaults`): the AI config a new workspace starts from (a
 * snapshot at creation, key included). Same attributes as `RigboxWorkspaceAiConfig` without a
 * workspace. There is one set of defaults per Rigbox user, so declare it once.
 */
export class RigboxAiDefaults extends AiConfigResource {
  /** The resource's Terraform type name. */
  public static readonly tfResourceType = 'rigbox_ai_defaults';

  /**
   * @param scope the stack (or other scope) to define the defaults in
   * @param id the construct id, unique among its siblings (it names the Terraform resource)
   * @param props the AI config new workspaces start from
   */
  constructor(scope: Construct, id: string, props: RigboxAiDefaultsProps) {
    super(scope, id, RigboxAiDefaults.tfResourceType, props);
  }
}
