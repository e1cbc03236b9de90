import {
  listMapperHcl,
  numberToTerraform,
  stringToHclTerraform,
  stringToTerraform,
  type TerraformMetaArguments,
  TerraformResource,
} from 'cdktf';
import type { Construct } from 'constructs';
import { AiProvider } from './ai-provider';
import { ByokEnforcement, type ByokRuleSet, type ByokRules } from './byok-rules';
import { isToken } from './private/checks';
import { hclNumber, hclString, withoutUndefined } from './private/hcl';

/** The account's server-side BYOK policy, from a rule set. */
export interface RigboxByokPolicyProps extends TerraformMetaArguments {
  /**
   * The rule set. The server enforces the rules it can see (modes, AI providers, models, key
   * age); the synth-only ones (key-source kinds and path prefixes) are for
   * `ByokPolicy.fromRules(rules)`.
   */
  readonly rules: ByokRuleSet;
}

const KNOWN_PROVIDERS = [
  AiProvider.ANTHROPIC,
  AiProvider.OPENAI,
  AiProvider.GOOGLE,
  AiProvider.BRAVE,
  AiProvider.MISTRAL,
  AiProvider.GROQ,
  AiProvider.XAI,
  AiProvider.DEEPSEEK,
  AiProvider.OPENROUTER,
].map((p) => p.id);
const MAX_KEY_AGE_DAYS = 3650;

/**
 * The account's BYOK policy as Rigbox enforces it (`rigbox_byok_policy`): every AI config write
 * through the API (Terraform, scripts, curl) is checked against it, and `terraform plan` fails on
 * a violation before apply. One per account, so declare it once. Build it from the same
 * `ByokRules` as the synth-time `ByokPolicy`.
 */
export class RigboxByokPolicy extends TerraformResource {
  /** The resource's Terraform type name. */
  public static readonly tfResourceType = 'rigbox_byok_policy';

  /** The rules this policy was built from. */
  public readonly rules: ByokRules;
  private readonly allowedModels?: { [provider: string]: string[] };

  /**
   * @param scope the stack (or other scope) to define the policy in
   * @param id the construct id, unique among its siblings (it names the Terraform resource)
   * @param props the rules
   */
  constructor(scope: Construct, id: string, props: RigboxByokPolicyProps) {
    super(scope, id, {
      terraformResourceType: RigboxByokPolicy.tfResourceType,
      terraformGeneratorMetadata: { providerName: 'rigbox', providerVersionConstraint: '~> 0.1' },
      provider: props.provider,
      dependsOn: props.dependsOn,
      count: props.count,
      lifecycle: props.lifecycle,
      provisioners: props.provisioners,
      connection: props.connection,
      forEach: props.forEach,
    });
    const fail = (problem: string) => {
      throw new Error(`${RigboxByokPolicy.tfResourceType} "${this.node.path}": ${problem}`);
    };
    const rules = props.rules.rules;
    for (const [name, list] of [
      ['allowedModes', rules.allowedModes],
      ['allowedAiProviders', rules.allowedAiProviders],
      ['allowedModels', rules.allowedModels],
    ] as const) {
      if (list && !isToken(list) && list.length === 0) {
        fail(`${name} is empty, so every config would be refused; leave it out to allow any`);
      }
    }
    const age = rules.maxKeyAgeDays;
    if (age !== undefined && !isToken(age) && (!Number.isInteger(age) || age < 1 || age > MAX_KEY_AGE_DAYS)) {
      fail(`maxKeyAgeDays must be a whole number of days from 1 to ${MAX_KEY_AGE_DAYS}, not ${age}`);
    }
    const providers = rules.allowedAiProviders?.map((p) => p.id);
    for (const [provider, models] of Object.entries(rules.allowedModelsByAiProvider ?? {})) {
      if (providers && !providers.includes(provider)) {
        fail(`allowedModelsByAiProvider lists "${provider}", which allowedAiProviders does not allow`);
      }
      if (!isToken(models) && models.length === 0) {
        fail(`allowedModelsByAiProvider["${provider}"] is empty; leave the provider out to allow any model`);
      }
    }
    this.rules = rules;
    this.allowedModels = serverModels(rules, providers);
  }

  /** Always `byok_policy`. */
  public get id(): string {
    return this.getStringAttribute('id');
  }

  /** The policy's revision in Rigbox (known after apply). */
  public get revision(): number {
    return this.getNumberAttribute('revision');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    const r = this.rules;
    return {
      enforcement: stringToTerraform(r.enforcement ?? ByokEnforcement.ENFORCE),
      allowed_modes: r.allowedModes?.map((m) => stringToTerraform(m)),
      allowed_providers: r.allowedAiProviders?.map((p) => stringToTerraform(p.id)),
      allowed_models: this.allowedModels,
      max_key_age_days: numberToTerraform(r.maxKeyAgeDays),
    };
  }

  protected override synthesizeHclAttributes(): { [name: string]: unknown } {
    const r = this.rules;
    const stringList = (value: string[] | undefined) => ({
      value: value === undefined ? undefined : listMapperHcl(stringToHclTerraform, false)(value),
      isBlock: false,
      type: 'list',
      storageClassType: 'stringList',
    });
    return withoutUndefined({
      enforcement: hclString(r.enforcement ?? ByokEnforcement.ENFORCE),
      allowed_modes: stringList(r.allowedModes?.map(String)),
      allowed_providers: stringList(r.allowedAiProviders?.map((p) => p.id)),
      // A map of lists: cdktf's renderer has no storage class for it, but renders `any` as HCL.
      allowed_models: {
        value: this.allowedModels,
        isBlock: false,
        type: 'any',
        storageClassType: 'stringListMap',
      },
      max_key_age_days: hclNumber(r.maxKeyAgeDays),
    });
  }
}

/**
 * The server's per-provider model lists: `allowedModelsByAiProvider` as given, and `allowedModels`
 * (any provider) as the same list for every allowed provider (every known one when none are
 * listed); where both speak of a provider, the models both allow.
 */
function serverModels(
  rules: ByokRules,
  providers: string[] | undefined,
): { [provider: string]: string[] } | undefined {
  const byProvider = rules.allowedModelsByAiProvider;
  const flat = rules.allowedModels;
  if (!byProvider && !flat) return undefined;
  const out: { [provider: string]: string[] } = {};
  if (flat) for (const provider of providers ?? KNOWN_PROVIDERS) out[provider] = [...flat];
  for (const [provider, models] of Object.entries(byProvider ?? {})) {
    const both = out[provider];
    out[provider] = both ? models.filter((m) => both.includes(m)) : [...models];
  }
  return out;
}
