import type { CtyType, DataSource, ObjectValue, SchemaSpec } from '@rigbox/tfplugin';
import { type Diagnostic, error } from '@rigbox/tfplugin';
import type { ProviderClient } from '../provider-client.js';
import { type ByokReportEntry, RigboxApiError } from '../rigbox-client.js';

const ENTRY: CtyType = [
  'object',
  {
    workspace_id: 'string',
    name: 'string',
    mode: 'string',
    ai_provider: 'string',
    model: 'string',
    compliant: 'bool',
    violated_rules: ['list', 'string'],
    key_age_days: 'number',
    key_past_max_age: 'bool',
  },
];

const entry = (e: ByokReportEntry): ObjectValue => ({
  workspace_id: e.workspace_id,
  name: e.name,
  mode: e.mode,
  ai_provider: e.provider,
  model: e.model,
  compliant: e.compliant,
  violated_rules: e.violations.map((v) => v.rule),
  key_age_days: e.key_age_days,
  key_past_max_age: e.key_past_max_age,
});

/** data "rigbox_byok_report": which configs of the account the BYOK policy in force allows. */
export class ByokReportDataSource implements DataSource<ProviderClient> {
  readonly typeName = 'rigbox_byok_report';
  private configured: ProviderClient | undefined;

  readonly schema: SchemaSpec = {
    version: 0,
    block: {
      description:
        "The account's AI defaults and every workspace, checked against the BYOK policy in force: whether each complies, which rules it breaks, and how old its key is. Use it in `check` blocks or outputs to watch compliance.",
      attributes: {
        id: { type: 'string', computed: true, description: 'Always `byok_report`.' },
        enforcement: { type: 'string', computed: true, description: "The policy's enforcement." },
        policy_revision: {
          type: 'number',
          computed: true,
          description: 'The policy revision the report used.',
        },
        compliant: {
          type: 'bool',
          computed: true,
          description: 'Whether the defaults and every workspace comply.',
        },
        noncompliant_workspace_ids: {
          type: ['list', 'string'],
          computed: true,
          description: 'The workspaces that break at least one rule, oldest first.',
        },
        defaults: {
          type: ENTRY,
          computed: true,
          description:
            'The AI defaults: mode, ai_provider, model, compliant, violated_rules, key_age_days (null without a key), key_past_max_age.',
        },
        workspaces: {
          type: ['list', ENTRY],
          computed: true,
          description:
            'Every workspace, oldest first, with the same fields as `defaults` and its id and name.',
        },
      },
    },
  };

  configure(client: ProviderClient): void {
    this.configured = client;
  }

  validate(): Diagnostic[] {
    return [];
  }

  async read(): Promise<{ state: ObjectValue | null; diagnostics?: Diagnostic[] }> {
    const client = this.configured;
    if (!client) {
      return {
        state: null,
        diagnostics: [error('Provider Not Configured', 'The rigbox provider is not configured.')],
      };
    }
    try {
      const { page, workspaces } = await client.rigbox.getReport();
      const defaults = page.defaults ? entry(page.defaults) : null;
      return {
        state: {
          id: 'byok_report',
          enforcement: page.policy.enforcement,
          policy_revision: page.policy.revision,
          compliant: (page.defaults?.compliant ?? true) && workspaces.every((w) => w.compliant),
          noncompliant_workspace_ids: workspaces
            .filter((w) => !w.compliant)
            .map((w) => w.workspace_id as string),
          defaults,
          workspaces: workspaces.map(entry),
        },
      };
    } catch (err) {
      if (!(err instanceof RigboxApiError)) throw err;
      return {
        state: null,
        diagnostics: [error('Cannot Read BYOK Report', `${err.message} (HTTP ${err.status}).`)],
      };
    }
  }
}
