import { Token } from 'cdktf';
import { AI_PROVIDER_IDS, MANAGED_PROVIDER_IDS } from './private/catalog/ai-providers';

const PROVIDER_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * The AI provider of a config (the API's `provider` field, `ai_provider` in Terraform).
 *
 * Use a static member, or `AiProvider.custom(id)` for a provider this library does not list yet.
 */
export class AiProvider {
  /** Anthropic (`ANTHROPIC_API_KEY`). Served in managed mode too. */
  public static readonly ANTHROPIC = new AiProvider('anthropic');
  /** OpenAI (`OPENAI_API_KEY`). Served in managed mode too. */
  public static readonly OPENAI = new AiProvider('openai');
  /** Google (`GOOGLE_API_KEY`). Served in managed mode too. */
  public static readonly GOOGLE = new AiProvider('google');
  /** Brave Search (`BRAVE_API_KEY`). Served in managed mode too. */
  public static readonly BRAVE = new AiProvider('brave');
  /** Mistral (`MISTRAL_API_KEY`). BYOK only. */
  public static readonly MISTRAL = new AiProvider('mistral');
  /** Groq (`GROQ_API_KEY`). BYOK only. */
  public static readonly GROQ = new AiProvider('groq');
  /** xAI (`XAI_API_KEY`). BYOK only. */
  public static readonly XAI = new AiProvider('xai');
  /** DeepSeek (`DEEPSEEK_API_KEY`). BYOK only. */
  public static readonly DEEPSEEK = new AiProvider('deepseek');
  /** OpenRouter (`OPENROUTER_API_KEY`). BYOK only. */
  public static readonly OPENROUTER = new AiProvider('openrouter');

  /**
   * A provider by its Rigbox id, for one this library does not list yet.
   *
   * The Terraform provider still checks the id against the providers Rigbox serves.
   *
   * @param id the provider id as the Rigbox API spells it, e.g. `mistral`
   */
  public static custom(id: string): AiProvider {
    if (!Token.isUnresolved(id) && !PROVIDER_ID.test(id)) {
      throw new Error(
        `AiProvider.custom: "${id}" is not a provider id; ids are lower-case letters, digits and "-" (e.g. "mistral")`,
      );
    }
    return new AiProvider(id);
  }

  /**
   * @param id the provider id as the Rigbox API spells it
   */
  private constructor(
    /** The provider id as the Rigbox API spells it, e.g. `openai`. */
    public readonly id: string,
  ) {}

  /** Whether Rigbox's managed mode serves this provider (false for an id it does not know). */
  public get servedInManagedMode(): boolean {
    return MANAGED_PROVIDERS.includes(this.id);
  }

  /** Whether this library knows the provider (a static member, or `custom` with a known id). */
  public get isKnown(): boolean {
    return KNOWN_PROVIDERS.includes(this.id);
  }
}

const MANAGED_PROVIDERS: readonly string[] = MANAGED_PROVIDER_IDS;
const KNOWN_PROVIDERS: readonly string[] = AI_PROVIDER_IDS;
