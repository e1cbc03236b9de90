import {
  AI_MODES,
  AI_PROVIDER_IDS,
  MANAGED_PROVIDER_IDS,
  MANAGED_PROVIDERS_TEXT,
  MODEL_PATTERN,
  MODEL_RULE,
} from '@rigbox/catalog';
import type {
  ApplyResult,
  AttributeSpec,
  BlockSpec,
  ClientCapabilities,
  ObjectValue,
  PlanRequest,
  PlanResult,
  Resource,
  SchemaSpec,
} from '@rigbox/tfplugin';
import { type Diagnostic, error, isUnknown, UNKNOWN, type Value, warning } from '@rigbox/tfplugin';
import { KeySourceError, type KeySourceRef, openKeySource, validateRef } from '../key-sources/index.js';
import type { ProviderClient } from '../provider-client.js';
import { type AiConfigInput, type AiConfigView, type ConfigOwner, RigboxApiError } from '../rigbox-client.js';

/**
 * What rigbox_workspace_ai_config and rigbox_ai_defaults share: the AI config attributes, the key
 * inputs, and drift detection that never reads a secret back from Rigbox.
 */

// The modes, providers and model rule come from the one catalog the service and the constructs use.
export const MODES: readonly string[] = AI_MODES;
export const AI_PROVIDERS: readonly string[] = AI_PROVIDER_IDS;
const MANAGED: readonly string[] = MANAGED_PROVIDER_IDS;

export const CONFIG_ATTRIBUTES: Record<string, AttributeSpec> = {
  mode: {
    type: 'string',
    required: true,
    description: '`managed` (Rigbox pays and counts credits) or `byok` (your own provider key). Required.',
  },
  ai_provider: {
    type: 'string',
    required: true,
    description: `The AI provider: one of ${AI_PROVIDERS.map((p) => `\`${p}\``).join(', ')}. Managed mode supports ${MANAGED_PROVIDERS_TEXT}. Required. (Named ai_provider because \`provider\` is a Terraform meta-argument.)`,
  },
  model: {
    type: 'string',
    optional: true,
    description: 'Model id, e.g. `gpt-4o` or `google/gemini-2.5-pro`. Default: none (the provider default).',
  },
  api_key_wo: {
    type: 'string',
    optional: true,
    sensitive: true,
    writeOnly: true,
    description:
      'The provider key as a write-only value (Terraform 1.11+ / OpenTofu 1.11+), e.g. from an ephemeral resource. Never stored in state or plan. Use with `api_key_wo_version`; exclusive with `api_key_source`. Default: none.',
  },
  api_key_wo_version: {
    type: 'number',
    optional: true,
    description:
      'Bump to send `api_key_wo` again (the key itself is never compared). Required with `api_key_wo`. Default: none.',
  },
  api_key_set: { type: 'bool', computed: true, description: 'Whether Rigbox holds a key for this config.' },
  api_key_fingerprint: {
    type: 'string',
    computed: true,
    description:
      "Rigbox's keyed one-way hash of the stored key: stable for the same key, reveals nothing about it. Changes when the key changes, for example to re-trigger dependents after a rotation.",
  },
  source_version: {
    type: 'string',
    computed: true,
    description:
      'The Vault secret version or SSM parameter version the key was read from (metadata only at plan time).',
  },
  api_key_updated_at: {
    type: 'string',
    computed: true,
    description:
      "When Rigbox's stored key was last set, rotated or cleared (RFC 3339): the key's age, which the account's BYOK policy may limit (`max_key_age_days`).",
  },
  revision: {
    type: 'number',
    computed: true,
    description: "The config's revision in Rigbox; increments on every change.",
  },
  updated_at: {
    type: 'string',
    computed: true,
    description: 'When Rigbox last changed the config (RFC 3339).',
  },
};

export const KEY_SOURCE_BLOCK: BlockSpec = {
  description: 'Where the byok key is read from, at apply time only. Exactly one of `vault` or `ssm`.',
  attributes: {},
  blocks: {
    vault: {
      nesting: 'single',
      block: {
        description: 'A field of a HashiCorp Vault KV v2 secret.',
        attributes: {
          mount: { type: 'string', required: true, description: 'The KV v2 mount, e.g. `secret`. Required.' },
          path: {
            type: 'string',
            required: true,
            description:
              "The secret path inside the mount, without the API's `data/` segment, e.g. `teams/ml/openai`. Required.",
          },
          field: {
            type: 'string',
            required: true,
            description: 'The field of the secret holding the key. Required.',
          },
          version: {
            type: 'number',
            optional: true,
            description: 'Pin a secret version. Default: the latest; a rotation then shows in plan.',
          },
        },
      },
    },
    ssm: {
      nesting: 'single',
      block: {
        description: 'An AWS SSM Parameter Store parameter (SecureString recommended).',
        attributes: {
          name: { type: 'string', required: true, description: 'The parameter name or ARN. Required.' },
          version: {
            type: 'number',
            optional: true,
            description: 'Pin a parameter version. Default: the latest; an update then shows in plan.',
          },
          label: {
            type: 'string',
            optional: true,
            description: 'Use the version with this label. Default: none.',
          },
        },
      },
    },
  },
};

/** What the provider remembers between runs, out of the user's sight (private state). */
interface AppliedKey {
  /** The fingerprint Rigbox reported right after we applied the key. */
  fingerprint: string | null;
  /** The source version the applied key was read from. */
  sourceVersion: string | null;
}

const readPrivate = (b: Buffer): AppliedKey | undefined => {
  if (!b || b.length === 0) return undefined;
  try {
    const p = JSON.parse(b.toString('utf8')) as Partial<AppliedKey>;
    return { fingerprint: p.fingerprint ?? null, sourceVersion: p.sourceVersion ?? null };
  } catch {
    return undefined;
  }
};
const writePrivate = (p: AppliedKey) => Buffer.from(JSON.stringify(p));

const str = (v: Value | undefined): string | null => (typeof v === 'string' ? v : null);
const num = (v: Value | undefined): number | null => (typeof v === 'number' ? v : null);
const obj = (v: Value | undefined): ObjectValue | null =>
  v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v) ? (v as ObjectValue) : null;

/** The key reference in a config or state object, or undefined; unknown parts make it 'unknown'. */
export function keySourceRef(value: ObjectValue): KeySourceRef | 'unknown' | undefined {
  const src = value.api_key_source;
  if (isUnknown(src)) return 'unknown';
  const block = obj(src);
  if (!block) return undefined;
  const vault = obj(block.vault);
  const ssm = obj(block.ssm);
  const parts = [vault, ssm].flatMap((b) => (b ? Object.values(b) : []));
  if (parts.some(isUnknown) || isUnknown(block.vault) || isUnknown(block.ssm)) return 'unknown';
  if (vault) {
    const version = num(vault.version);
    return {
      kind: 'vault',
      mount: str(vault.mount) ?? '',
      path: str(vault.path) ?? '',
      field: str(vault.field) ?? '',
      ...(version !== null ? { version } : {}),
    };
  }
  if (ssm) {
    const version = num(ssm.version);
    const label = str(ssm.label);
    return {
      kind: 'ssm',
      name: str(ssm.name) ?? '',
      ...(version !== null ? { version } : {}),
      ...(label ? { label } : {}),
    };
  }
  return undefined;
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function validateConfig(config: ObjectValue, caps: ClientCapabilities): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const mode = config.mode;
  if (typeof mode === 'string' && !MODES.includes(mode)) {
    diags.push(error('Invalid Mode', `mode must be "managed" or "byok", got "${mode}".`, ['mode']));
  }
  const provider = config.ai_provider;
  if (typeof provider === 'string' && !AI_PROVIDERS.includes(provider)) {
    diags.push(
      error(
        'Invalid AI Provider',
        `ai_provider must be one of ${AI_PROVIDERS.join(', ')}; got "${provider}".`,
        ['ai_provider'],
      ),
    );
  }
  if (mode === 'managed' && typeof provider === 'string' && !MANAGED.includes(provider)) {
    diags.push(
      error(
        'AI Provider Not Available In Managed Mode',
        `Managed mode supports ${MANAGED_PROVIDERS_TEXT}; "${provider}" needs mode = "byok" with your own key.`,
        ['ai_provider'],
      ),
    );
  }
  const model = config.model;
  if (typeof model === 'string' && !MODEL_PATTERN.test(model)) {
    diags.push(error('Invalid Model', `model ${MODEL_RULE}; got "${model}".`, ['model']));
  }

  const wo = config.api_key_wo;
  const hasWo = wo !== null && wo !== undefined;
  const block = obj(config.api_key_source);
  const hasSource = block !== null || isUnknown(config.api_key_source);
  if (hasWo && !caps.writeOnlyAttributesAllowed) {
    diags.push(
      error(
        'Write-Only Attribute Not Supported',
        'api_key_wo is a write-only attribute and needs Terraform 1.11+ or OpenTofu 1.11+. This client would store it in state, so it is refused; use api_key_source instead or upgrade.',
        ['api_key_wo'],
      ),
    );
  }
  if (hasWo && (config.api_key_wo_version === null || config.api_key_wo_version === undefined)) {
    diags.push(
      error(
        'Missing Key Version',
        'api_key_wo needs api_key_wo_version: bump it whenever you want the key sent again.',
        ['api_key_wo_version'],
      ),
    );
  }
  if (hasWo && hasSource) {
    diags.push(
      error('Conflicting Key Inputs', 'Set either api_key_source or api_key_wo, not both.', ['api_key_wo']),
    );
  }
  if (mode === 'byok' && !hasWo && !hasSource) {
    diags.push(
      error(
        'Missing API Key',
        'byok mode needs exactly one key input: an api_key_source block (vault or ssm) or api_key_wo with api_key_wo_version.',
        ['mode'],
      ),
    );
  }
  if (mode === 'managed' && (hasWo || hasSource)) {
    diags.push(
      error(
        'Key Not Allowed In Managed Mode',
        'Managed mode uses Rigbox\'s own provider keys; remove api_key_source / api_key_wo or set mode = "byok".',
        hasWo ? ['api_key_wo'] : ['api_key_source'],
      ),
    );
  }
  if (block) {
    const vault = block.vault;
    const ssm = block.ssm;
    const count = [vault, ssm].filter((b) => b !== null && b !== undefined).length;
    if (count !== 1) {
      diags.push(
        error('Invalid Key Source', 'api_key_source needs exactly one of a vault block or an ssm block.', [
          'api_key_source',
        ]),
      );
    } else {
      const ref = keySourceRef(config);
      if (ref && ref !== 'unknown') {
        const problem = validateRef(ref);
        if (problem) {
          const at =
            ref.kind === 'vault' ? ['api_key_source', 'vault', 'path'] : ['api_key_source', 'ssm', 'name'];
          diags.push(error('Invalid Key Source Reference', problem, at));
        }
      }
    }
  }
  return diags;
}

/** Copies the service's view into the state's computed attributes. */
function fromView(state: ObjectValue, view: AiConfigView): ObjectValue {
  return {
    ...state,
    mode: view.mode,
    ai_provider: view.provider,
    model: view.model,
    api_key_set: view.api_key_set,
    api_key_fingerprint: view.api_key_fingerprint,
    api_key_updated_at: view.api_key_updated_at,
    revision: view.revision,
    updated_at: view.updated_at,
  };
}

function apiDiagnostic(err: unknown, action: string): Diagnostic {
  if (err instanceof RigboxApiError) {
    if (err.status === 412) {
      return error(
        'AI Config Changed Concurrently',
        `Rigbox refused to ${action}: the config changed since this plan was made (someone else applied or edited it). Run plan again to see the current config.`,
      );
    }
    const path =
      err.field === 'api_key'
        ? undefined
        : err.field === 'provider'
          ? ['ai_provider']
          : err.field
            ? [err.field]
            : undefined;
    return error(`Rigbox API Error`, `Could not ${action}: ${err.message} (HTTP ${err.status}).`, path);
  }
  throw err;
}

function keySourceDiagnostic(err: unknown, ref: KeySourceRef): Diagnostic {
  if (err instanceof KeySourceError) {
    const at = ref.kind === 'vault' ? ['api_key_source', 'vault'] : ['api_key_source', 'ssm'];
    return error(
      'Cannot Read API Key From Source',
      `${err.message} The AI config in Rigbox was left unchanged.`,
      at,
    );
  }
  throw err;
}

export interface AiConfigOps {
  owner(state: ObjectValue): ConfigOwner;
  client(): ProviderClient;
}

/** Plan: decide what apply will change, with no secret read (key-source metadata at most). */
export async function planConfig(request: PlanRequest): Promise<PlanResult> {
  const { prior, config } = request;
  const planned: ObjectValue = { ...request.planned };
  const mode = planned.mode;
  const byok = mode === 'byok';
  const source = keySourceRef(config);
  const hasWo = config.api_key_wo !== null && config.api_key_wo !== undefined;
  const hasKeyInput = source !== undefined || hasWo;

  if (!prior) {
    planned.api_key_set = isUnknown(mode) ? UNKNOWN : byok && hasKeyInput;
    planned.api_key_fingerprint = byok ? UNKNOWN : isUnknown(mode) ? UNKNOWN : null;
    planned.source_version = byok && source ? UNKNOWN : isUnknown(mode) ? UNKNOWN : null;
    // The first PUT may set or clear a key of the existing config: its time is Rigbox's to say.
    planned.api_key_updated_at = UNKNOWN;
    return { planned, plannedPrivate: Buffer.alloc(0) };
  }

  const applied = readPrivate(request.priorPrivate);
  const fieldsChanged = ['mode', 'ai_provider', 'model'].some((f) => !sameJson(prior[f], planned[f]));
  let keyChanged = false;
  if (isUnknown(mode)) {
    keyChanged = true;
    planned.api_key_set = UNKNOWN;
    planned.api_key_fingerprint = UNKNOWN;
    planned.source_version = UNKNOWN;
  } else if (!byok) {
    keyChanged = prior.api_key_set === true;
    planned.api_key_set = false;
    planned.api_key_fingerprint = null;
    planned.source_version = null;
  } else if (hasKeyInput) {
    const refChanged = !sameJson(prior.api_key_source, planned.api_key_source);
    const woChanged = !sameJson(prior.api_key_wo_version, planned.api_key_wo_version);
    // Out-of-band drift: the key in Rigbox is not the one we applied (replaced, cleared or never applied).
    const keyDrift =
      !applied ||
      prior.api_key_set !== true ||
      prior.api_key_fingerprint !== applied.fingerprint ||
      applied.fingerprint === null;
    // Rotation at the source: refresh recorded the source's current version (metadata only).
    const rotated =
      source !== undefined && applied !== undefined && prior.source_version !== applied.sourceVersion;
    // A stored key belongs to its provider: a provider change must send the key again.
    const providerChanged = !sameJson(prior.ai_provider, planned.ai_provider);
    keyChanged = refChanged || woChanged || keyDrift || rotated || providerChanged;
    planned.api_key_set = true;
    if (keyChanged) {
      planned.api_key_fingerprint = UNKNOWN;
      planned.source_version = source !== undefined ? UNKNOWN : null;
    } else {
      planned.api_key_fingerprint = prior.api_key_fingerprint ?? null;
      planned.source_version = prior.source_version ?? null;
    }
  }
  planned.api_key_updated_at = keyChanged ? UNKNOWN : (prior.api_key_updated_at ?? null);
  if (fieldsChanged || keyChanged) {
    planned.revision = UNKNOWN;
    planned.updated_at = UNKNOWN;
  } else {
    planned.revision = prior.revision ?? null;
    planned.updated_at = prior.updated_at ?? null;
  }
  return { planned, plannedPrivate: request.priorPrivate };
}

const DAY_MS = 86_400_000;

/**
 * Plan-time BYOK policy checks, so CI fails before apply: the planned mode, provider and model as
 * the service judges them (under `enforce` an error naming the rule and the attribute, under
 * `report` a warning), and the age of a key this plan keeps (a warning to rotate it at its source).
 */
export async function policyDiagnostics(
  ops: AiConfigOps,
  config: ObjectValue,
  planned: ObjectValue,
): Promise<Diagnostic[]> {
  const { mode, ai_provider: provider, model } = planned;
  if (typeof mode !== 'string' || typeof provider !== 'string' || isUnknown(model)) return [];
  let check: Awaited<ReturnType<ProviderClient['rigbox']['checkPolicy']>>;
  try {
    check = await ops.client().rigbox.checkPolicy({ mode, provider, model: str(model) });
  } catch (err) {
    if (!(err instanceof RigboxApiError)) return [];
    return [
      warning(
        'Cannot Check BYOK Policy',
        `The account's BYOK policy could not be checked at plan time: ${err.message} (HTTP ${err.status}). Rigbox still enforces it at apply.`,
      ),
    ];
  }
  const diags: Diagnostic[] = [];
  for (const v of check.violations) {
    const path = v.field === 'provider' ? ['ai_provider'] : v.field === 'api_key' ? undefined : [v.field];
    if (check.enforcement === 'enforce') {
      diags.push(
        error(
          'BYOK Policy Violation',
          `Rule ${v.rule}: ${v.message}. The account's BYOK policy is enforced: Rigbox refuses this config, so change it before apply.`,
          path,
        ),
      );
    } else {
      diags.push(
        warning(
          'BYOK Policy Violation (Report Only)',
          `Rule ${v.rule}: ${v.message}. The policy is in report mode: apply writes this config and Rigbox records the violation.`,
          path,
        ),
      );
    }
  }
  const keyAt = planned.api_key_updated_at;
  const max = check.max_key_age_days;
  if (mode === 'byok' && max !== null && planned.api_key_set === true && typeof keyAt === 'string') {
    const age = Math.floor((Date.now() - Date.parse(keyAt)) / DAY_MS);
    if (age > max) {
      const source = keySourceRef(config);
      const where =
        source && source !== 'unknown'
          ? source.kind === 'vault'
            ? `in Vault (${source.mount}/${source.path})`
            : `in SSM (${source.name})`
          : 'where it comes from';
      diags.push(
        warning(
          'API Key Past Maximum Age',
          `The key Rigbox holds was set ${age} days ago, past the BYOK policy limit of ${max} days (rule max_key_age_days). Rotate it at its source, ${where}, then apply: plan picks up the new version.`,
          source
            ? ['api_key_source']
            : config.api_key_wo_version != null
              ? ['api_key_wo_version']
              : undefined,
        ),
      );
    }
  }
  return diags;
}

/** Create and update: resolve the key (at apply only), then PUT the config. */
export async function applyConfig(
  ops: AiConfigOps,
  prior: ObjectValue | null,
  planned: ObjectValue,
  config: ObjectValue,
  plannedPrivate: Buffer,
): Promise<ApplyResult> {
  const client = ops.client();
  const owner = ops.owner(planned);
  const input: AiConfigInput = {
    mode: planned.mode as 'managed' | 'byok',
    provider: String(planned.ai_provider),
    model: str(planned.model),
  };
  const applied = readPrivate(plannedPrivate);
  let sourceVersion: string | null = str(planned.source_version);
  const sendKey = planned.mode === 'byok' && (isUnknown(planned.api_key_fingerprint) || !prior);
  if (sendKey) {
    const ref = keySourceRef(config);
    if (ref && ref !== 'unknown') {
      try {
        const read = await openKeySource(ref, client.keySources).readValue();
        input.api_key = read.value;
        sourceVersion = read.version;
      } catch (err) {
        return { state: null, diagnostics: [keySourceDiagnostic(err, ref)] };
      }
    } else if (typeof config.api_key_wo === 'string') {
      input.api_key = config.api_key_wo;
      sourceVersion = null;
    } else {
      return {
        state: null,
        diagnostics: [
          error('Missing API Key', 'byok mode needs a key input and none was available at apply time.', [
            'mode',
          ]),
        ],
      };
    }
  }
  let view: AiConfigView;
  try {
    const ifRevision = prior && typeof prior.revision === 'number' ? prior.revision : undefined;
    view = await client.rigbox.putConfig(owner, input, ifRevision);
  } catch (err) {
    return { state: null, diagnostics: [apiDiagnostic(err, 'apply the AI config')] };
  }
  const state = fromView({ ...planned }, view);
  state.source_version = planned.mode === 'byok' ? sourceVersion : null;
  state.id = owner.kind === 'workspace' ? owner.workspaceId : 'defaults';
  const fingerprint = sendKey ? view.api_key_fingerprint : (applied?.fingerprint ?? view.api_key_fingerprint);
  return {
    state,
    private: writePrivate({ fingerprint, sourceVersion: state.source_version as string | null }),
  };
}

/** Refresh: the service's view (never a key), and the key source's current version from metadata. */
export async function readConfig(
  ops: AiConfigOps,
  current: ObjectValue,
  privateData: Buffer,
): Promise<ApplyResult> {
  const client = ops.client();
  let view: AiConfigView;
  try {
    view = await client.rigbox.getConfig(ops.owner(current));
  } catch (err) {
    if (err instanceof RigboxApiError && err.status === 404) return { state: null };
    return { state: current, diagnostics: [apiDiagnostic(err, 'read the AI config')] };
  }
  const state = fromView({ ...current }, view);
  const diagnostics: Diagnostic[] = [];
  const ref = keySourceRef(current);
  if (view.mode === 'byok' && ref && ref !== 'unknown') {
    try {
      state.source_version = await openKeySource(ref, client.keySources).readVersion();
    } catch (err) {
      if (!(err instanceof KeySourceError)) throw err;
      diagnostics.push(
        warning(
          'Cannot Check Key Source Version',
          `${err.message} A rotation at the source cannot be detected until it is readable again.`,
          ref.kind === 'vault' ? ['api_key_source', 'vault'] : ['api_key_source', 'ssm'],
        ),
      );
    }
  }
  return { state, private: privateData, diagnostics };
}

/** Destroy: a Rigbox config cannot be deleted, so destroying it clears the stored key (byok). */
export async function deleteConfig(
  ops: AiConfigOps,
  prior: ObjectValue,
): Promise<{ diagnostics?: Diagnostic[] }> {
  if (prior.mode !== 'byok') return {};
  try {
    await ops.client().rigbox.putConfig(ops.owner(prior), {
      mode: 'byok',
      provider: String(prior.ai_provider),
      api_key: null,
    });
    return {};
  } catch (err) {
    if (err instanceof RigboxApiError && err.status === 404) return {};
    return { diagnostics: [apiDiagnostic(err, 'clear the key')] };
  }
}

/**
 * The lifecycle both AI-config resources share; each says only whose config it manages (its
 * owner), its schema, and what differs in planning and import.
 */
export abstract class AiConfigResource implements Resource<ProviderClient>, AiConfigOps {
  abstract readonly typeName: string;
  abstract readonly schema: SchemaSpec;
  private configured: ProviderClient | undefined;

  abstract owner(state: ObjectValue): ConfigOwner;

  client(): ProviderClient {
    if (!this.configured) throw new Error('provider not configured');
    return this.configured;
  }

  configure(client: ProviderClient): void {
    this.configured = client;
  }

  upgraded(state: ObjectValue): void {
    this.configured?.rigbox.expectRead(this.owner(state));
  }

  validate(config: ObjectValue, capabilities: ClientCapabilities): Diagnostic[] {
    return validateConfig(config, capabilities);
  }

  async plan(request: PlanRequest): Promise<PlanResult> {
    const result = await planConfig(request);
    const policy = await policyDiagnostics(this, request.config, result.planned);
    if (policy.length) result.diagnostics = [...(result.diagnostics ?? []), ...policy];
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

  abstract importState(id: string): Promise<ApplyResult>;
}
