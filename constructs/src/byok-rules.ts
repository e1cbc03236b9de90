import type { AiMode } from './ai-mode';
import type { AiProvider } from './ai-provider';
import type { KeySourceKind } from './api-key-source';

/** What happens to a config that breaks a rule. */
export enum ByokEnforcement {
  /** Refused: synth fails (`ByokPolicy`), and the Rigbox API answers 422 (`RigboxByokPolicy`). */
  ENFORCE = 'enforce',
  /** Let through and reported: a synth warning, and a violation recorded in Rigbox's audit trail. */
  REPORT = 'report',
}

/**
 * One BYOK rule set, stated once, from which both enforcement points are built:
 * `ByokPolicy.fromRules(rules)` checks configs at synth time (including key-source kinds and
 * path prefixes, which only synth can see), and `new RigboxByokPolicy(scope, id, { rules })` is
 * the account's policy that the Rigbox API enforces on every config write, whatever the client
 * (including key age, which only the server can see). Every rule left unset allows anything.
 */
export interface ByokRules {
  /**
   * Enforce (refuse) or only report what breaks a rule, at both points.
   *
   * @default ByokEnforcement.ENFORCE
   */
  readonly enforcement?: ByokEnforcement;
  /**
   * The modes a config may use. Synth and server.
   *
   * @default - any mode
   */
  readonly allowedModes?: AiMode[];
  /**
   * The AI providers a config may use (compared by id). Synth and server.
   *
   * @default - any AI provider
   */
  readonly allowedAiProviders?: AiProvider[];
  /**
   * The models a config may use, whatever its AI provider. A config that sets no model is refused
   * when this is set, since the provider's default model is outside the policy's control. Synth
   * and server (there, as the same list for every allowed AI provider).
   *
   * @default - any model, or none
   */
  readonly allowedModels?: string[];
  /**
   * Per AI provider id (e.g. `openai`), the only models a config of that provider may use;
   * providers left out may use any model. Synth and server.
   *
   * @default - any model for every AI provider
   */
  readonly allowedModelsByAiProvider?: { [aiProviderId: string]: string[] };
  /**
   * Keys set or rotated longer ago than this many days (1 to 3650) are out of policy. Server
   * only (synth never sees a key): the Rigbox report flags them and `plan` warns to rotate them.
   *
   * @default - no limit
   */
  readonly maxKeyAgeDays?: number;
  /**
   * The kinds of key source a BYOK config may use. Synth only.
   *
   * @default - Vault and SSM
   */
  readonly allowedKeySourceKinds?: KeySourceKind[];
  /**
   * Where Vault references may point: prefixes of `<mount>/<path>`, matched whole segment by
   * whole segment (`secret/teams` allows `secret/teams/ml/openai`, not `secret/teams-old/x`).
   * Synth only.
   *
   * @default - any Vault path
   */
  readonly allowedVaultPathPrefixes?: string[];
  /**
   * Where SSM references may point: prefixes of the parameter name, matched whole segment by
   * whole segment (`/rigbox/ml` allows `/rigbox/ml/openai`). An ARN is matched as written, so list
   * ARN prefixes to allow ARNs. Synth only.
   *
   * @default - any SSM parameter
   */
  readonly allowedSsmNamePrefixes?: string[];
}

/**
 * A BYOK rule set as one object, to build both enforcement points from:
 * `ByokPolicy.fromRules(ruleSet)` (synth time) and `new RigboxByokPolicy(scope, id, { rules: ruleSet })`
 * (the Rigbox API). In Python: `rules = ByokRuleSet(allowed_ai_providers=[AiProvider.OPENAI], ...)`.
 */
export class ByokRuleSet {
  /** The rules, as given. */
  public readonly rules: ByokRules;

  /**
   * @param rules the rules; every rule left unset allows anything
   */
  constructor(rules: ByokRules = {}) {
    this.rules = rules;
  }
}
