import { Annotations, type IAspect } from 'cdktf';
import type { IConstruct } from 'constructs';
import { AiConfigResource } from './ai-config-resource';
import type { AiMode } from './ai-mode';
import type { AiProvider } from './ai-provider';
import { KeySourceKind } from './api-key-source';
import { brand } from './private/brands';
import { isToken, vaultLocation } from './private/checks';

/**
 * What a `ByokPolicy` allows. Every rule left unset allows anything; every rule that is set must
 * be met by every Rigbox AI config in scope.
 */
export interface ByokPolicyProps {
  /**
   * The modes a config may use.
   *
   * @default - any mode
   */
  readonly allowedModes?: AiMode[];
  /**
   * The AI providers a config may use (compared by id).
   *
   * @default - any AI provider
   */
  readonly allowedAiProviders?: AiProvider[];
  /**
   * The models a config may use. A config that sets no model is refused when this is set, since
   * the provider's default model is outside the policy's control.
   *
   * @default - any model, or none
   */
  readonly allowedModels?: string[];
  /**
   * The kinds of key source a BYOK config may use.
   *
   * @default - Vault and SSM
   */
  readonly allowedKeySourceKinds?: KeySourceKind[];
  /**
   * Where Vault references may point: prefixes of `<mount>/<path>`, matched whole segment by
   * whole segment (`secret/teams` allows `secret/teams/ml/openai`, not `secret/teams-old/x`).
   *
   * @default - any Vault path
   */
  readonly allowedVaultPathPrefixes?: string[];
  /**
   * Where SSM references may point: prefixes of the parameter name, matched whole segment by
   * whole segment (`/rigbox/ml` allows `/rigbox/ml/openai`). An ARN is matched as written, so list
   * ARN prefixes to allow ARNs.
   *
   * @default - any SSM parameter
   */
  readonly allowedSsmNamePrefixes?: string[];
}

const trimTrailingSlashes = (s: string) => s.replace(/\/+$/, '');

function underPrefix(value: string, prefixes: string[]): boolean {
  return prefixes.some((raw) => {
    const prefix = trimTrailingSlashes(raw);
    return prefix === '' || value === prefix || value.startsWith(`${prefix}/`);
  });
}

const list = (values: readonly string[]) => values.map((v) => `"${v}"`).join(', ');

/**
 * Policy as code for Rigbox AI configs: an aspect that fails synth when a workspace config or the
 * defaults use a mode, AI provider, model or key source outside policy.
 *
 * Add it to a stack or to the App: `Aspects.of(app).add(new ByokPolicy({...}))`. Each violation
 * is an error annotation naming the construct path and the rule, so `cdktf synth` fails. Values
 * that are unresolved tokens (known only at plan time) cannot be checked and are refused by any
 * rule that looks at them.
 */
export class ByokPolicy implements IAspect {
  private readonly props: ByokPolicyProps;

  /**
   * @param props the rules; every rule left unset allows anything
   */
  constructor(props: ByokPolicyProps = {}) {
    this.props = props;
  }

  /** Checks one construct; anything other than a Rigbox AI config passes. */
  public visit(node: IConstruct): void {
    if (!AiConfigResource.isAiConfigResource(node)) return;
    for (const violation of this.violations(node)) {
      Annotations.of(node).addError(`ByokPolicy: ${node.node.path} breaks rule ${violation}`);
    }
  }

  private violations(config: AiConfigResource): string[] {
    const p = this.props;
    const out: string[] = [];
    const unresolved = (rule: string, what: string, value: string) =>
      out.push(`${rule}: the ${what} is not known at synth time (${value}), so it cannot be checked`);

    if (p.allowedModes && !p.allowedModes.includes(config.mode)) {
      out.push(`allowedModes: mode "${config.mode}" is not allowed (allowed: ${list(p.allowedModes)})`);
    }
    if (p.allowedAiProviders) {
      const allowed = p.allowedAiProviders.map((a) => a.id);
      const id = config.aiProvider.id;
      if (isToken(id)) unresolved('allowedAiProviders', 'AI provider', id);
      else if (!allowed.includes(id)) {
        out.push(`allowedAiProviders: AI provider "${id}" is not allowed (allowed: ${list(allowed)})`);
      }
    }
    if (p.allowedModels) {
      const model = config.model;
      if (model === undefined) {
        out.push(
          `allowedModels: no model is set, so the AI provider's default would be used (allowed: ${list(p.allowedModels)})`,
        );
      } else if (isToken(model)) unresolved('allowedModels', 'model', model);
      else if (!p.allowedModels.includes(model)) {
        out.push(`allowedModels: model "${model}" is not allowed (allowed: ${list(p.allowedModels)})`);
      }
    }
    const source = config.apiKeySource;
    if (!source) return out;
    if (p.allowedKeySourceKinds && !p.allowedKeySourceKinds.includes(source.kind)) {
      out.push(
        `allowedKeySourceKinds: key source kind "${source.kind}" is not allowed (allowed: ${list(p.allowedKeySourceKinds)})`,
      );
    }
    const vault = source.vault;
    if (source.kind === KeySourceKind.VAULT && vault && p.allowedVaultPathPrefixes) {
      const location = vaultLocation(vault.mount, vault.path);
      if (isToken(vault.mount) || isToken(vault.path)) {
        unresolved('allowedVaultPathPrefixes', 'Vault path', location);
      } else if (!underPrefix(location, p.allowedVaultPathPrefixes)) {
        out.push(
          `allowedVaultPathPrefixes: Vault path "${location}" is outside the allowed prefixes (${list(p.allowedVaultPathPrefixes)})`,
        );
      }
    }
    const ssm = source.ssm;
    if (source.kind === KeySourceKind.SSM && ssm && p.allowedSsmNamePrefixes) {
      if (isToken(ssm.name)) unresolved('allowedSsmNamePrefixes', 'SSM parameter name', ssm.name);
      else if (!underPrefix(ssm.name, p.allowedSsmNamePrefixes)) {
        out.push(
          `allowedSsmNamePrefixes: SSM parameter "${ssm.name}" is outside the allowed prefixes (${list(p.allowedSsmNamePrefixes)})`,
        );
      }
    }
    return out;
  }
}

brand(ByokPolicy.prototype, 'byok-policy');
