import type { DataSource, ObjectValue, SchemaSpec } from '@rigbox/tfplugin';
import { type Diagnostic, error } from '@rigbox/tfplugin';
import type { ProviderClient } from '../provider-client.js';
import { RigboxApiError } from '../rigbox-client.js';

/** data "rigbox_workspace_ai_config": a workspace's AI config as Rigbox shows it (never the key). */
export class WorkspaceAiConfigDataSource implements DataSource<ProviderClient> {
  readonly typeName = 'rigbox_workspace_ai_config';
  private configured: ProviderClient | undefined;

  readonly schema: SchemaSpec = {
    version: 0,
    block: {
      description:
        "Reads a workspace's AI config. Rigbox never returns the key; only whether one is set and its fingerprint.",
      attributes: {
        workspace_id: { type: 'string', required: true, description: 'The workspace to read. Required.' },
        id: { type: 'string', computed: true, description: 'The workspace id.' },
        mode: { type: 'string', computed: true, description: '`managed` or `byok`.' },
        ai_provider: { type: 'string', computed: true, description: 'The AI provider.' },
        model: {
          type: 'string',
          computed: true,
          description: 'The model, or null for the provider default.',
        },
        api_key_set: { type: 'bool', computed: true, description: 'Whether a key is stored.' },
        api_key_fingerprint: {
          type: 'string',
          computed: true,
          description: 'Keyed one-way hash of the stored key.',
        },
        api_key_updated_at: { type: 'string', computed: true, description: 'When the key last changed.' },
        revision: { type: 'number', computed: true, description: "The config's revision." },
        updated_at: { type: 'string', computed: true, description: 'When the config last changed.' },
      },
    },
  };

  configure(client: ProviderClient): void {
    this.configured = client;
  }

  validate(): Diagnostic[] {
    return [];
  }

  async read(config: ObjectValue): Promise<{ state: ObjectValue | null; diagnostics?: Diagnostic[] }> {
    const client = this.configured;
    if (!client)
      return {
        state: null,
        diagnostics: [error('Provider Not Configured', 'The rigbox provider is not configured.')],
      };
    const workspaceId = String(config.workspace_id);
    try {
      const view = await client.rigbox.getConfig({ kind: 'workspace', workspaceId });
      return {
        state: {
          workspace_id: workspaceId,
          id: workspaceId,
          mode: view.mode,
          ai_provider: view.provider,
          model: view.model,
          api_key_set: view.api_key_set,
          api_key_fingerprint: view.api_key_fingerprint,
          api_key_updated_at: view.api_key_updated_at,
          revision: view.revision,
          updated_at: view.updated_at,
        },
      };
    } catch (err) {
      if (!(err instanceof RigboxApiError)) throw err;
      const detail =
        err.status === 404
          ? `Workspace "${workspaceId}" does not exist or belongs to another user.`
          : `${err.message} (HTTP ${err.status}).`;
      return {
        state: null,
        diagnostics: [error('Cannot Read Workspace AI Config', detail, ['workspace_id'])],
      };
    }
  }
}
