import { Annotations, type IAspect } from 'cdktf';
import type { IConstruct } from 'constructs';
import { AiConfigResource } from './ai-config-resource';
import { KeySourceKind } from './api-key-source';
import { ByokEnforcement, type ByokRuleSet, type ByokRules } from './byok-rules';
import { brand } from './private/brands';
import { isToken, vaultLocation } from './private/checks';

/**
 * What a `ByokPolicy` checks at synth time: a `ByokRules`. The same rules build the server-side
 * policy (`RigboxByokPolicy`); see `ByokRules` for which rule is checked where.
 */
export interface ByokPolicyProps extends ByokRules {}

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
  /**
   * The synth-time half of a rule set whose server-side half is `RigboxByokPolicy`: state the
   * rules once, get both enforcement points.
   *
   * @param ruleSet the rule set; every rule left unset allows anything
   */
  public static fromRules(ruleSet: ByokRuleSet): ByokPolicy {
    return new ByokPolicy(ruleSet.rules);
  }

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
    const report = this.props.enforcement === ByokEnforcement.REPORT;
    for (const violation of this.violations(node)) {
      const message = `ByokPolicy: ${node.node.path} breaks rule ${violation}`;
      // Report mode is what the server does too: the config goes through, the violation is shown.
      if (report) Annotations.of(node).addWarning(message);
      else Annotations.of(node).addError(message);
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
    const byProvider = p.allowedModelsByAiProvider?.[config.aiProvider.id];
    if (byProvider && !isToken(config.aiProvider.id)) {
      const model = config.model;
      if (model === undefined) {
        out.push(
          `allowedModelsByAiProvider: no model is set, so the default of "${config.aiProvider.id}" would be used (allowed: ${list(byProvider)})`,
        );
      } else if (isToken(model)) unresolved('allowedModelsByAiProvider', 'model', model);
      else if (!byProvider.includes(model)) {
        out.push(
          `allowedModelsByAiProvider: model "${model}" is not allowed for "${config.aiProvider.id}" (allowed: ${list(byProvider)})`,
        );
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
