import type { ApplyResult, ObjectValue, PlanRequest, PlanResult, SchemaSpec } from '@rigbox/tfplugin';
import { UNKNOWN } from '@rigbox/tfplugin';
import type { ConfigOwner } from '../rigbox-client.js';
import { AiConfigResource, CONFIG_ATTRIBUTES, KEY_SOURCE_BLOCK } from './ai-config.common.js';

/** rigbox_workspace_ai_config: one workspace's AI config, its key read from Vault or SSM at apply. */
export class WorkspaceAiConfigResource extends AiConfigResource {
  readonly typeName = 'rigbox_workspace_ai_config';

  readonly schema: SchemaSpec = {
    version: 0,
    block: {
      description:
        "A Rigbox workspace's AI config: managed mode, or byok with the key read from Vault or AWS SSM at apply time. The key is never stored in state or plan; drift (an out-of-band change, a key replaced in Rigbox, a rotation at the source) shows in plan.",
      attributes: {
        id: { type: 'string', computed: true, description: 'The workspace id.' },
        workspace_id: {
          type: 'string',
          required: true,
          description: 'The workspace whose AI config this is. Changing it replaces the resource. Required.',
        },
        ...CONFIG_ATTRIBUTES,
      },
      blocks: { api_key_source: { nesting: 'single', block: KEY_SOURCE_BLOCK } },
    },
  };

  owner(state: ObjectValue): ConfigOwner {
    return { kind: 'workspace', workspaceId: String(state.workspace_id) };
  }

  override upgraded(state: ObjectValue): void {
    if (typeof state.workspace_id === 'string') super.upgraded(state);
  }

  override async plan(request: PlanRequest): Promise<PlanResult> {
    const replacing = request.prior !== null && request.prior.workspace_id !== request.planned.workspace_id;
    // Another workspace is another object: plan it like a create, with every computed value unknown.
    const result = await super.plan(
      replacing ? { ...request, prior: null, priorPrivate: Buffer.alloc(0) } : request,
    );
    result.planned.id = request.planned.workspace_id ?? null;
    if (!replacing) return result;
    result.planned.revision = UNKNOWN;
    result.planned.updated_at = UNKNOWN;
    return { ...result, requiresReplace: [['workspace_id']] };
  }

  async importState(id: string): Promise<ApplyResult> {
    return { state: { id, workspace_id: id } };
  }
}
