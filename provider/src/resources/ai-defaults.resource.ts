import type { ApplyResult, PlanRequest, PlanResult, SchemaSpec } from '@rigbox/tfplugin';
import type { ConfigOwner } from '../rigbox-client.js';
import { AiConfigResource, CONFIG_ATTRIBUTES, KEY_SOURCE_BLOCK } from './ai-config.common.js';

/** rigbox_ai_defaults: the AI config new workspaces of the token's user start from (a snapshot). */
export class AiDefaultsResource extends AiConfigResource {
  readonly typeName = 'rigbox_ai_defaults';

  readonly schema: SchemaSpec = {
    version: 0,
    block: {
      description:
        "The AI defaults of the provider token's user: new workspaces start from a snapshot of them (key included). Same attributes and key sources as rigbox_workspace_ai_config.",
      attributes: {
        id: { type: 'string', computed: true, description: 'Always `defaults`.' },
        ...CONFIG_ATTRIBUTES,
      },
      blocks: { api_key_source: { nesting: 'single', block: KEY_SOURCE_BLOCK } },
    },
  };

  owner(): ConfigOwner {
    return { kind: 'defaults' };
  }

  override async plan(request: PlanRequest): Promise<PlanResult> {
    const result = await super.plan(request);
    result.planned.id = 'defaults';
    return result;
  }

  async importState(): Promise<ApplyResult> {
    return { state: { id: 'defaults' } };
  }
}
