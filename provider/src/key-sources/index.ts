/**
 * Key sources: where a workspace's API key lives (Vault KV v2 or AWS SSM Parameter Store), read at
 * apply time only. Plans and drift checks use `readVersion()`, which reads metadata, never the key.
 */
import { KeySourceError } from './errors.js';
import type { KeySource } from './key-source.js';
import { describeRef, type KeySourceRef, validateRef } from './reference.js';
import type { SsmSettings } from './ssm.js';
import { VaultKeySource, type VaultSettings } from './vault.js';

export { KeySourceError, type KeySourceErrorKind } from './errors.js';
export type { KeySource } from './key-source.js';
export { describeRef, type KeySourceRef, parseVaultShorthand, validateRef } from './reference.js';
export type { SsmSettings } from './ssm.js';
export type { VaultSettings } from './vault.js';

/**
 * Opens a key source; nothing is read yet. Throws a KeySourceError ('invalid_reference') at once for
 * a malformed reference, or for a Vault reference without Vault settings.
 */
export function openKeySource(
  ref: KeySourceRef,
  settings: { vault?: VaultSettings; ssm?: SsmSettings },
): KeySource {
  const reference = describeRef(ref);
  const problem = validateRef(ref);
  if (problem !== undefined) {
    throw new KeySourceError('invalid_reference', reference, `Invalid key source ${reference}: ${problem}`);
  }
  if (ref.kind === 'ssm') {
    // The AWS SDK is most of the provider's code; load it only when an SSM reference is used, so
    // the provider starts fast (Terraform starts it several times per command).
    const ssm = import('./ssm.js').then((m) => new m.SsmKeySource(ref, settings.ssm ?? {}));
    return {
      describe: () => reference,
      readValue: () => ssm.then((s) => s.readValue()),
      readVersion: () => ssm.then((s) => s.readVersion()),
    };
  }
  if (settings.vault === undefined || settings.vault.address === '') {
    throw new KeySourceError(
      'invalid_reference',
      reference,
      `Key source ${reference} needs a Vault address: configure the provider's vault block (or VAULT_ADDR)`,
    );
  }
  return new VaultKeySource(ref, settings.vault);
}
