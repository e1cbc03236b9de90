import type { Diagnostic } from '../protocol/diagnostics.js';
import type {
  ApplyResult,
  ClientCapabilities,
  ObjectValue,
  PlanRequest,
  PlanResult,
  Resource,
} from '../protocol/framework.js';
import type { SchemaSpec } from '../protocol/schema.js';
import type { ProviderClient } from '../provider-client.js';
import type { ConfigOwner } from '../rigbox-client.js';
import {
  type AiConfigOps,
  applyConfig,
  CONFIG_ATTRIBUTES,
  deleteConfig,
  KEY_SOURCE_BLOCK,
  planConfig,
  readConfig,
  validateConfig,
} from './ai-config.common.js';

/** rigbox_ai_defaults: the AI config new workspaces of the token's user start from (a snapshot). */
export class AiDefaultsResource implements Resource<ProviderClient>, AiConfigOps {
  readonly typeName = 'rigbox_ai_defaults';
  private configured: ProviderClient | undefined;

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

  client(): ProviderClient {
    if (!this.configured) throw new Error('provider not configured');
    return this.configured;
  }

  configure(client: ProviderClient): void {
    this.configured = client;
  }

  validate(config: ObjectValue, capabilities: ClientCapabilities): Diagnostic[] {
    return validateConfig(config, capabilities);
  }

  async plan(request: PlanRequest): Promise<PlanResult> {
    const result = await planConfig(request);
    result.planned.id = 'defaults';
    return result;
  }

  create(planned: ObjectValue, config: ObjectValue): Promise<ApplyResult> {
    return applyConfig(this, null, planned, config, Buffer.alloc(0));
  }

  read(current: ObjectValue, privateData: Buffer): Promise<ApplyResult> {
    return readConfig(this, current, privateData);
  }

  update(
    prior: ObjectValue,
    planned: ObjectValue,
    config: ObjectValue,
    plannedPrivate: Buffer,
  ): Promise<ApplyResult> {
    return applyConfig(this, prior, planned, config, plannedPrivate);
  }

  delete(prior: ObjectValue): Promise<{ diagnostics?: Diagnostic[] }> {
    return deleteConfig(this, prior);
  }

  async importState(): Promise<ApplyResult> {
    return { state: { id: 'defaults' } };
  }
}
