import type {
  ApplyResult,
  ClientCapabilities,
  ObjectValue,
  PlanRequest,
  PlanResult,
  Resource,
  SchemaSpec,
} from '@rigbox/tfplugin';
import { type Diagnostic, error, isUnknown, UNKNOWN, type Value } from '@rigbox/tfplugin';
import type { ProviderClient } from '../provider-client.js';
import { type ByokPolicyInput, type ByokPolicyView, RigboxApiError } from '../rigbox-client.js';
import { AI_PROVIDERS, MODES } from './ai-config.common.js';

const ID = 'byok_policy';
const MAX_KEY_AGE_DAYS = 3650;
/** The attributes a user sets; the rest are computed. */
const RULES = ['enforcement', 'allowed_modes', 'allowed_providers', 'allowed_models', 'max_key_age_days'];

const strings = (v: Value | undefined): string[] | null =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null;

function toInput(planned: ObjectValue): ByokPolicyInput {
  const models = planned.allowed_models;
  return {
    enforcement: planned.enforcement === 'report' ? 'report' : 'enforce',
    allowed_modes: strings(planned.allowed_modes),
    allowed_providers: strings(planned.allowed_providers),
    allowed_models:
      models && typeof models === 'object' && !Array.isArray(models) && !isUnknown(models)
        ? Object.fromEntries(Object.entries(models).map(([p, list]) => [p, strings(list) ?? []]))
        : null,
    max_key_age_days: typeof planned.max_key_age_days === 'number' ? planned.max_key_age_days : null,
  };
}

function toState(view: ByokPolicyView): ObjectValue {
  return {
    id: ID,
    enforcement: view.enforcement,
    allowed_modes: view.allowed_modes,
    allowed_providers: view.allowed_providers,
    allowed_models: view.allowed_models,
    max_key_age_days: view.max_key_age_days,
    revision: view.revision,
    updated_at: view.updated_at,
  };
}

function apiDiagnostic(err: unknown, action: string): Diagnostic {
  if (!(err instanceof RigboxApiError)) throw err;
  if (err.status === 412) {
    return error(
      'BYOK Policy Changed Concurrently',
      `Rigbox refused to ${action}: the policy changed since this plan was made. Run plan again to see the current policy.`,
    );
  }
  const at = err.field ? [err.field.split('.')[0] as string] : undefined;
  return error('Rigbox API Error', `Could not ${action}: ${err.message} (HTTP ${err.status}).`, at);
}

/**
 * rigbox_byok_policy: the account's BYOK policy, one per account (like rigbox_ai_defaults). The
 * service enforces it on every config write, whatever the client; destroying it leaves an empty
 * policy, which allows everything.
 */
export class ByokPolicyResource implements Resource<ProviderClient> {
  readonly typeName = 'rigbox_byok_policy';
  private configured: ProviderClient | undefined;

  readonly schema: SchemaSpec = {
    version: 0,
    block: {
      description:
        "The BYOK policy of the provider token's account, enforced by the Rigbox API on every AI config write (any client: Terraform, a script, curl). One per account. Every rule is optional; an empty policy allows everything. Changing the policy never rewrites existing configs: `rigbox_byok_report` shows what falls outside it.",
      attributes: {
        id: { type: 'string', computed: true, description: 'Always `byok_policy`.' },
        enforcement: {
          type: 'string',
          optional: true,
          computed: true,
          description:
            '`enforce`: a config write that breaks a rule is refused (and `plan` fails on it). `report`: it is written and the violation recorded (`plan` warns). Default: `enforce`.',
        },
        allowed_modes: {
          type: ['list', 'string'],
          optional: true,
          description: 'The modes configs may use (`managed`, `byok`). Default: any.',
        },
        allowed_providers: {
          type: ['list', 'string'],
          optional: true,
          description: `The AI providers configs may use, in any mode: ${AI_PROVIDERS.map((p) => `\`${p}\``).join(', ')}. Default: any.`,
        },
        allowed_models: {
          type: ['map', ['list', 'string']],
          optional: true,
          description:
            'Per provider, the only models its configs may name (the provider default, no model, is then not allowed). Providers left out may use any model. Default: any.',
        },
        max_key_age_days: {
          type: 'number',
          optional: true,
          description: `Keys set or rotated longer ago than this many days (1 to ${MAX_KEY_AGE_DAYS}) are out of policy: the report flags them and plan warns to rotate them at their source. Default: no limit.`,
        },
        revision: { type: 'number', computed: true, description: "The policy's revision in Rigbox." },
        updated_at: {
          type: 'string',
          computed: true,
          description: 'When the policy last changed (RFC 3339).',
        },
      },
    },
  };

  private client(): ProviderClient {
    if (!this.configured) throw new Error('provider not configured');
    return this.configured;
  }

  configure(client: ProviderClient): void {
    this.configured = client;
  }

  validate(config: ObjectValue, _capabilities: ClientCapabilities): Diagnostic[] {
    const diags: Diagnostic[] = [];
    const enforcement = config.enforcement;
    if (typeof enforcement === 'string' && enforcement !== 'enforce' && enforcement !== 'report') {
      diags.push(
        error('Invalid Enforcement', `enforcement must be "enforce" or "report", got "${enforcement}".`, [
          'enforcement',
        ]),
      );
    }
    const list = (name: string, allowed: readonly string[], what: string) => {
      const v = config[name];
      if (!Array.isArray(v)) return;
      if (v.length === 0) {
        diags.push(
          error(
            'Policy Allows Nothing',
            `${name} is empty, so every config would be refused; leave ${name} out to allow any ${what}.`,
            [name],
          ),
        );
      }
      v.forEach((item, i) => {
        if (typeof item === 'string' && !allowed.includes(item)) {
          diags.push(
            error(
              `Unknown ${what[0]?.toUpperCase()}${what.slice(1)}`,
              `${name} holds "${item}"; expected one of ${allowed.join(', ')}.`,
              [name, i],
            ),
          );
        }
      });
      if (v.every((x) => typeof x === 'string') && new Set(v).size !== v.length) {
        diags.push(error('Duplicate Entry', `${name} lists an entry twice.`, [name]));
      }
    };
    list('allowed_modes', MODES, 'mode');
    list('allowed_providers', AI_PROVIDERS, 'provider');
    const models = config.allowed_models;
    if (models && typeof models === 'object' && !Array.isArray(models) && !isUnknown(models)) {
      const providers = strings(config.allowed_providers);
      for (const [provider, list] of Object.entries(models)) {
        if (!AI_PROVIDERS.includes(provider)) {
          diags.push(
            error(
              'Unknown Provider In Allowed Models',
              `allowed_models names "${provider}", which is not an AI provider; expected one of ${AI_PROVIDERS.join(', ')}.`,
              ['allowed_models', provider],
            ),
          );
        } else if (providers && !isUnknown(config.allowed_providers) && !providers.includes(provider)) {
          diags.push(
            error(
              'Model List For A Provider Not Allowed',
              `allowed_models lists "${provider}", which allowed_providers does not allow; add it there or remove its model list.`,
              ['allowed_models', provider],
            ),
          );
        }
        if (Array.isArray(list) && list.length === 0) {
          diags.push(
            error(
              'Empty Model List',
              `allowed_models["${provider}"] is empty; leave the provider out to allow any model.`,
              ['allowed_models', provider],
            ),
          );
        }
      }
    }
    const age = config.max_key_age_days;
    if (typeof age === 'number' && (!Number.isInteger(age) || age < 1 || age > MAX_KEY_AGE_DAYS)) {
      diags.push(
        error(
          'Invalid Maximum Key Age',
          `max_key_age_days must be a whole number of days from 1 to ${MAX_KEY_AGE_DAYS}; got ${age}.`,
          ['max_key_age_days'],
        ),
      );
    }
    return diags;
  }

  async plan(request: PlanRequest): Promise<PlanResult> {
    const { prior, config } = request;
    const planned: ObjectValue = { ...request.planned, id: ID };
    if (config.enforcement === null || config.enforcement === undefined) planned.enforcement = 'enforce';
    const same =
      prior && RULES.every((r) => JSON.stringify(prior[r] ?? null) === JSON.stringify(planned[r] ?? null));
    planned.revision = same ? (prior.revision ?? null) : UNKNOWN;
    planned.updated_at = same ? (prior.updated_at ?? null) : UNKNOWN;
    return { planned };
  }

  async create(planned: ObjectValue): Promise<ApplyResult> {
    try {
      return { state: toState(await this.client().rigbox.putPolicy(toInput(planned))) };
    } catch (err) {
      return { state: null, diagnostics: [apiDiagnostic(err, 'set the BYOK policy')] };
    }
  }

  async read(current: ObjectValue): Promise<ApplyResult> {
    try {
      return { state: toState(await this.client().rigbox.getPolicy()) };
    } catch (err) {
      return { state: current, diagnostics: [apiDiagnostic(err, 'read the BYOK policy')] };
    }
  }

  async update(prior: ObjectValue, planned: ObjectValue): Promise<ApplyResult> {
    const ifRevision = typeof prior.revision === 'number' ? prior.revision : undefined;
    try {
      return { state: toState(await this.client().rigbox.putPolicy(toInput(planned), ifRevision)) };
    } catch (err) {
      return { state: null, diagnostics: [apiDiagnostic(err, 'update the BYOK policy')] };
    }
  }

  /** Destroy leaves the account without rules: an empty policy, which allows everything. */
  async delete(prior: ObjectValue): Promise<{ diagnostics?: Diagnostic[] }> {
    const ifRevision = typeof prior.revision === 'number' ? prior.revision : undefined;
    try {
      await this.client().rigbox.putPolicy(
        {
          enforcement: 'enforce',
          allowed_modes: null,
          allowed_providers: null,
          allowed_models: null,
          max_key_age_days: null,
        },
        ifRevision,
      );
      return {};
    } catch (err) {
      return { diagnostics: [apiDiagnostic(err, 'clear the BYOK policy')] };
    }
  }

  /** Any id imports the account's policy (there is one); the read that follows fills it in. */
  async importState(): Promise<ApplyResult> {
    return { state: { id: ID } };
  }
}
