import {
  Aspects,
  type IResolvable,
  stringToTerraform,
  type TerraformMetaArguments,
  TerraformResource,
  TerraformStack,
} from 'cdktf';
import type { Construct, IConstruct } from 'constructs';
import { AiMode } from './ai-mode';
import type { AiProvider } from './ai-provider';
import type { ApiKeySource } from './api-key-source';
import { brand, hasBrand, type PolicyLike } from './private/brands';
import { checkModel } from './private/checks';
import { hclString, withoutUndefined } from './private/hcl';

/** What every Rigbox AI config takes: the mode, the AI provider, the model and the key source. */
export interface AiConfigProps extends TerraformMetaArguments {
  /**
   * `AiMode.MANAGED` (Rigbox pays and counts credits) or `AiMode.BYOK` (the team's own key).
   */
  readonly mode: AiMode;
  /**
   * The AI provider, e.g. `AiProvider.OPENAI`. Managed mode serves anthropic, openai, google and
   * brave only.
   */
  readonly aiProvider: AiProvider;
  /**
   * The model id, e.g. `gpt-4o` or `google/gemini-2.5-pro`.
   *
   * @default - none: Rigbox uses the AI provider's default model
   */
  readonly model?: string;
  /**
   * Where the provider reads the BYOK key at apply time. Required in `AiMode.BYOK`, not allowed in
   * `AiMode.MANAGED`. There is no way to pass the key itself.
   *
   * @default - no key source (right for managed mode only)
   */
  readonly apiKeySource?: ApiKeySource;
}

/**
 * What `RigboxWorkspaceAiConfig` and `RigboxAiDefaults` share: the AI config attributes, the key
 * source reference, and the attributes Rigbox computes.
 */
export abstract class AiConfigResource extends TerraformResource {
  /** Whether `x` is a Rigbox AI config (a workspace config or the defaults). */
  public static isAiConfigResource(x: unknown): x is AiConfigResource {
    return hasBrand(x, 'ai-config');
  }

  /** The configured mode. */
  public readonly mode: AiMode;
  /** The configured AI provider. */
  public readonly aiProvider: AiProvider;
  /** The configured model, if any. */
  public readonly model?: string;
  /** The configured key source, if any. */
  public readonly apiKeySource?: ApiKeySource;

  /**
   * @param scope the scope to define the config in
   * @param id the construct id, unique among its siblings
   * @param terraformResourceType the Terraform resource type of the subclass
   * @param props the AI config
   */
  protected constructor(scope: Construct, id: string, terraformResourceType: string, props: AiConfigProps) {
    super(scope, id, {
      terraformResourceType,
      terraformGeneratorMetadata: { providerName: 'rigbox', providerVersionConstraint: '~> 0.1' },
      provider: props.provider,
      dependsOn: props.dependsOn,
      count: props.count,
      lifecycle: props.lifecycle,
      provisioners: props.provisioners,
      connection: props.connection,
      forEach: props.forEach,
    });
    const problem = checkConfig(props);
    if (problem) throw new Error(`${terraformResourceType} "${this.node.path}": ${problem}`);
    this.mode = props.mode;
    this.aiProvider = props.aiProvider;
    this.model = props.model;
    this.apiKeySource = props.apiKeySource;
    this.node.addValidation({ validate: () => this.checkAppPolicies() });
  }

  /** The resource id in Terraform state. */
  public get id(): string {
    return this.getStringAttribute('id');
  }

  /** Whether Rigbox holds a key for this config (known after apply). */
  public get apiKeySet(): IResolvable {
    return this.getBooleanAttribute('api_key_set');
  }

  /**
   * Rigbox's keyed one-way hash of the stored key: stable for the same key, revealing nothing about
   * it. It changes when the key changes, so it can re-trigger dependents after a rotation (for
   * example a `null_resource` that restarts agents).
   */
  public get apiKeyFingerprint(): string {
    return this.getStringAttribute('api_key_fingerprint');
  }

  /** The Vault secret version or SSM parameter version the key was read from. */
  public get sourceVersion(): string {
    return this.getStringAttribute('source_version');
  }

  /** The config's revision in Rigbox; it increments on every change. */
  public get revision(): number {
    return this.getNumberAttribute('revision');
  }

  /** When Rigbox last changed the config (RFC 3339). */
  public get updatedAt(): string {
    return this.getStringAttribute('updated_at');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      mode: stringToTerraform(this.mode),
      ai_provider: stringToTerraform(this.aiProvider.id),
      model: stringToTerraform(this.model),
      api_key_source: this.apiKeySource?._toTerraform(),
    };
  }

  protected override synthesizeHclAttributes(): { [name: string]: unknown } {
    return withoutUndefined({
      mode: hclString(this.mode),
      ai_provider: hclString(this.aiProvider.id),
      model: hclString(this.model),
      api_key_source: {
        value: this.apiKeySource?._toHclTerraform(),
        isBlock: true,
        type: 'struct',
        storageClassType: 'struct',
      },
    });
  }

  // cdktf applies aspects from the stack down, so a ByokPolicy added to the App would never run.
  // Each config therefore checks the policies of the scopes above its stack itself, at validation
  // (which runs before synth collects error annotations).
  private checkAppPolicies(): string[] {
    const stack = TerraformStack.of(this);
    const above: PolicyLike[] = [];
    for (let scope = stack.node.scope; scope !== undefined; scope = scope.node.scope) {
      for (const aspect of Aspects.of(scope).all) {
        if (hasBrand(aspect, 'byok-policy')) above.push(aspect as PolicyLike);
      }
    }
    if (above.length === 0) return [];
    // A policy also added at or below the stack was already run by cdktf: report it once.
    const covered = new Set<unknown>();
    for (let scope: IConstruct | undefined = this; scope !== undefined; scope = scope.node.scope) {
      for (const aspect of Aspects.of(scope).all) covered.add(aspect);
      if (scope === stack) break;
    }
    for (const policy of above) if (!covered.has(policy)) policy.visit(this);
    return [];
  }
}

// On the prototype: one property for all configs rather than one per instance.
brand(AiConfigResource.prototype, 'ai-config');

function checkConfig(props: AiConfigProps): string | undefined {
  const mode = props.mode as string;
  if (mode !== AiMode.MANAGED && mode !== AiMode.BYOK) {
    return `mode must be AiMode.MANAGED or AiMode.BYOK, got "${mode}"`;
  }
  if (typeof props.aiProvider?.id !== 'string') {
    return 'aiProvider must be an AiProvider, e.g. AiProvider.OPENAI or AiProvider.custom("...")';
  }
  if (mode === AiMode.BYOK && props.apiKeySource === undefined) {
    return (
      'mode BYOK needs an apiKeySource: ApiKeySource.fromVault({ mount, path, field }) or ' +
      'ApiKeySource.fromSsm({ name }). Keys are named by reference only, so that no key is ever ' +
      'written to the synthesized configuration or state.'
    );
  }
  if (mode === AiMode.MANAGED && props.apiKeySource !== undefined) {
    return "mode MANAGED uses Rigbox's own provider keys; remove apiKeySource or use AiMode.BYOK";
  }
  const provider = props.aiProvider;
  if (mode === AiMode.MANAGED && provider.isKnown && !provider.servedInManagedMode) {
    return `managed mode serves anthropic, openai, google and brave; "${provider.id}" needs AiMode.BYOK with your own key`;
  }
  return checkModel(props.model);
}
