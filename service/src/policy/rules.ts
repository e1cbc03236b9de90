import { z } from 'zod';
import { AI_PROVIDER_IDS, type AiProviderId } from '../ai-config/providers.js';
import { AiProvider, Mode, Model } from '../ai-config/schemas.js';
import type { AiMode } from '../storage/types.js';

/**
 * An account's BYOK policy: which modes, providers and models its configs may use, and how old a
 * stored key may get. Every rule is optional; an empty policy allows everything. `enforce` refuses
 * a config write that breaks a rule; `report` lets it through and records the violation.
 */

export const MAX_KEY_AGE_DAYS = 3650;
const MAX_MODELS_PER_PROVIDER = 100;

export const Enforcement = z
  .enum(['enforce', 'report'])
  .describe(
    '`enforce`: a config write that breaks a rule is refused (422). `report`: it is written and the violation recorded.',
  );

const ModelList = z
  .array(Model)
  .min(
    1,
    'a provider listed in allowed_models needs at least one model; leave the provider out to allow any model',
  )
  .max(MAX_MODELS_PER_PROVIDER);

/** One optional model list per known provider: an unknown provider is a 400 naming it. */
const AllowedModels = z
  .strictObject(
    Object.fromEntries(AI_PROVIDER_IDS.map((id) => [id, ModelList.optional()])) as Record<
      AiProviderId,
      z.ZodOptional<typeof ModelList>
    >,
  )
  .describe(
    'Per provider, the only models its configs may name (a config must then name one; null, the provider default, is not on any list). Providers left out may use any model.',
  );

const noDuplicates = <T>(list: readonly T[] | null | undefined) =>
  !list || new Set(list).size === list.length;

export const ByokPolicyInput = z
  .strictObject({
    enforcement: Enforcement.default('enforce').describe(
      '`enforce` (default) refuses a config write that breaks a rule; `report` writes it and records the violation.',
    ),
    allowed_modes: z
      .array(Mode)
      .min(1, 'allowed_modes allows no mode, so every config would be refused; leave it out to allow both')
      .nullable()
      .optional()
      .refine(noDuplicates, 'allowed_modes lists a mode twice')
      .describe('The modes configs may use; absent or null: any.'),
    allowed_providers: z
      .array(AiProvider)
      .min(
        1,
        'allowed_providers allows no provider, so every config would be refused; leave it out to allow any',
      )
      .nullable()
      .optional()
      .refine(noDuplicates, 'allowed_providers lists a provider twice')
      .describe('The providers configs may use, in any mode; absent or null: any.'),
    allowed_models: AllowedModels.nullable().optional(),
    max_key_age_days: z
      .number()
      .int('max_key_age_days must be a whole number of days')
      .min(1, 'max_key_age_days must be at least 1')
      .max(MAX_KEY_AGE_DAYS, `max_key_age_days must be at most ${MAX_KEY_AGE_DAYS} (ten years)`)
      .nullable()
      .optional()
      .describe(
        'Keys older than this many days (since set or rotated) are out of policy: the report flags them and the provider warns to rotate them. A config write is not refused for it.',
      ),
  })
  .superRefine((p, ctx) => {
    // A model list for a provider the policy does not allow can never apply: a mistake to name.
    if (!p.allowed_models || !p.allowed_providers) return;
    for (const provider of Object.keys(p.allowed_models)) {
      if (!p.allowed_providers.includes(provider as AiProviderId)) {
        ctx.addIssue({
          code: 'custom',
          path: ['allowed_models', provider],
          message: `allowed_models lists "${provider}", which allowed_providers does not allow; add it to allowed_providers or remove its model list`,
        });
      }
    }
  })
  .describe('An account BYOK policy. Every rule is optional; an empty policy allows everything.');
export type ByokPolicyInput = z.infer<typeof ByokPolicyInput>;

/** The policy as stored and evaluated: absent rules are null. */
export interface ByokPolicy {
  readonly enforcement: 'enforce' | 'report';
  readonly allowed_modes: AiMode[] | null;
  readonly allowed_providers: AiProviderId[] | null;
  readonly allowed_models: Partial<Record<AiProviderId, string[]>> | null;
  readonly max_key_age_days: number | null;
}

export const EMPTY_POLICY: ByokPolicy = {
  enforcement: 'enforce',
  allowed_modes: null,
  allowed_providers: null,
  allowed_models: null,
  max_key_age_days: null,
};

export const normalizePolicy = (input: ByokPolicyInput): ByokPolicy => ({
  enforcement: input.enforcement,
  allowed_modes: input.allowed_modes ?? null,
  allowed_providers: input.allowed_providers ?? null,
  allowed_models: input.allowed_models ?? null,
  max_key_age_days: input.max_key_age_days ?? null,
});

export type PolicyRule = 'allowed_modes' | 'allowed_providers' | 'allowed_models' | 'max_key_age_days';
export const PolicyRuleName = z.enum([
  'allowed_modes',
  'allowed_providers',
  'allowed_models',
  'max_key_age_days',
]);

export interface Violation {
  readonly rule: PolicyRule;
  /** The config field to change: mode, provider, model or api_key. */
  readonly field: 'mode' | 'provider' | 'model' | 'api_key';
  readonly message: string;
}

export const ViolationView = z.object({
  rule: PolicyRuleName,
  field: z.enum(['mode', 'provider', 'model', 'api_key']),
  message: z.string(),
});

/** What a rule looks at in a config. */
export interface PolicySubject {
  readonly mode: AiMode;
  readonly provider: string;
  readonly model: string | null;
}

const list = (items: readonly string[]) => items.map((i) => `"${i}"`).join(', ');

/** The rules a config's mode, provider and model break (key age aside: see keyAgeViolation). */
export function configViolations(policy: ByokPolicy, config: PolicySubject): Violation[] {
  const out: Violation[] = [];
  if (policy.allowed_modes && !policy.allowed_modes.includes(config.mode)) {
    out.push({
      rule: 'allowed_modes',
      field: 'mode',
      message: `mode "${config.mode}" is not allowed by the account's BYOK policy (allowed_modes: ${list(policy.allowed_modes)}); set mode to one of them`,
    });
  }
  if (policy.allowed_providers && !policy.allowed_providers.includes(config.provider as AiProviderId)) {
    out.push({
      rule: 'allowed_providers',
      field: 'provider',
      message: `provider "${config.provider}" is not allowed by the account's BYOK policy (allowed_providers: ${list(policy.allowed_providers)}); set provider to one of them`,
    });
  }
  const models = policy.allowed_models?.[config.provider as AiProviderId];
  if (models && (config.model === null || !models.includes(config.model))) {
    out.push({
      rule: 'allowed_models',
      field: 'model',
      message:
        config.model === null
          ? `the provider default model is not allowed for "${config.provider}" by the account's BYOK policy; set model to one of ${list(models)}`
          : `model "${config.model}" is not allowed for "${config.provider}" by the account's BYOK policy; set model to one of ${list(models)}`,
    });
  }
  return out;
}

const DAY_MS = 86_400_000;

/** Whole days since the key was set or rotated; null when no key is stored. */
export function keyAgeDays(keyUpdatedAt: string | null, hasKey: boolean, now: Date): number | null {
  if (!hasKey || !keyUpdatedAt) return null;
  const since = Date.parse(keyUpdatedAt);
  if (Number.isNaN(since)) return null;
  return Math.max(0, Math.floor((now.getTime() - since) / DAY_MS));
}

export function keyAgeViolation(policy: ByokPolicy, ageDays: number | null): Violation | null {
  if (policy.max_key_age_days === null || ageDays === null || ageDays <= policy.max_key_age_days) return null;
  return {
    rule: 'max_key_age_days',
    field: 'api_key',
    message: `the key is ${ageDays} days old, past the account's BYOK policy limit of ${policy.max_key_age_days} days; rotate it at its source and apply again`,
  };
}
