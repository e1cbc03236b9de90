/**
 * How a workspace pays for AI: with Rigbox's own provider keys, or with the team's own key.
 */
export enum AiMode {
  /** Rigbox pays the AI provider and counts credits. No key is given. */
  MANAGED = 'managed',
  /** Bring your own key: the team's provider key, billed by the provider. Needs an `ApiKeySource`. */
  BYOK = 'byok',
}
