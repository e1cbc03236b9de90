import { Token } from 'cdktf';
import { MODEL_PATTERN, MODEL_RULE } from './catalog/ai-providers';
import {
  checkSsmReference as ssmRule,
  vaultLocation,
  checkVaultReference as vaultRule,
} from './catalog/references';

// Eager checks of values that are wrong by themselves, with the rules of the one catalog
// (catalog/, copied into ./catalog at build time). Each returns a message or undefined, and passes
// any value that holds an unresolved token: it is only known at plan time, where the Terraform
// provider checks it again with the same rules.

export const isToken = (value: unknown): boolean => value !== undefined && Token.isUnresolved(value);

const known = (value: unknown): boolean => !isToken(value);

export { vaultLocation };

/** The catalog's Vault reference rules (catalog/src/references.ts), tokens passing. */
export function checkVaultReference(
  mount: string,
  path: string,
  field: string,
  version: number | undefined,
): string | undefined {
  return vaultRule({ mount, path, field, version }, known);
}

/** The catalog's SSM reference rules (catalog/src/references.ts), tokens passing. */
export function checkSsmReference(
  name: string,
  version: number | undefined,
  label: string | undefined,
): string | undefined {
  return ssmRule({ name, version, label }, known);
}

export function checkModel(model: string | undefined): string | undefined {
  if (model === undefined || isToken(model) || MODEL_PATTERN.test(model)) return undefined;
  return `model "${model}" ${MODEL_RULE}`;
}
