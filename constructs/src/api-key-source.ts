import { numberToTerraform, stringToTerraform } from 'cdktf';
import { checkSsmReference, checkVaultReference, isToken, vaultLocation } from './private/checks';
import { hclBlock, hclNumber, hclString } from './private/hcl';

/** Where a BYOK key is kept. */
export enum KeySourceKind {
  /** A field of a HashiCorp Vault KV v2 secret. */
  VAULT = 'vault',
  /** An AWS SSM Parameter Store parameter. */
  SSM = 'ssm',
}

/** A field of a HashiCorp Vault KV v2 secret. */
export interface VaultKeySourceProps {
  /**
   * The KV v2 mount, e.g. `secret`.
   */
  readonly mount: string;
  /**
   * The logical secret path inside the mount, e.g. `teams/ml/openai`: without the KV v2 API's
   * `data/` segment, as in `vault kv get -mount=secret teams/ml/openai`.
   */
  readonly path: string;
  /**
   * The field of the secret that holds the key, e.g. `api_key`.
   */
  readonly field: string;
  /**
   * Pin a secret version.
   *
   * @default - the latest version; a new version in Vault then shows as a change in plan
   */
  readonly version?: number;
}

/** An AWS SSM Parameter Store parameter (a SecureString, preferably). */
export interface SsmKeySourceProps {
  /**
   * The parameter name, e.g. `/rigbox/ml/openai`, or its ARN.
   */
  readonly name: string;
  /**
   * Pin a parameter version. Exclusive with `label`.
   *
   * @default - the latest version; a new version then shows as a change in plan
   */
  readonly version?: number;
  /**
   * Use the version that carries this label. Exclusive with `version`.
   *
   * @default - no label: the latest version
   */
  readonly label?: string;
}

/**
 * Where the provider reads a BYOK key at apply time: a reference, never the key.
 *
 * The key itself never enters synth output, plan or state: the Terraform provider reads it from
 * the source during apply and sends it to Rigbox; plans compare only source metadata (versions)
 * and Rigbox's fingerprint of the stored key.
 *
 * Make one with `ApiKeySource.fromVault(...)` or `ApiKeySource.fromSsm(...)`. There is on purpose
 * no way to pass the key itself.
 */
export class ApiKeySource {
  /**
   * A field of a HashiCorp Vault KV v2 secret.
   *
   * Throws at once for a reference that is wrong by itself (empty parts, `..` segments, the KV v2
   * API's `data/` segment in the path, a version below 1); parts that are unresolved tokens are
   * checked by the provider at plan time instead.
   */
  public static fromVault(props: VaultKeySourceProps): ApiKeySource {
    const problem = checkVaultReference(props.mount, props.path, props.field, props.version);
    if (problem) throw new Error(`ApiKeySource.fromVault: ${problem}`);
    return new ApiKeySource(KeySourceKind.VAULT, props, undefined);
  }

  /**
   * An AWS SSM Parameter Store parameter.
   *
   * Throws at once for a reference that is wrong by itself (a malformed name or ARN, a version in
   * the name, both version and label, a bad label); parts that are unresolved tokens are checked by
   * the provider at plan time instead.
   */
  public static fromSsm(props: SsmKeySourceProps): ApiKeySource {
    const problem = checkSsmReference(props.name, props.version, props.label);
    if (problem) throw new Error(`ApiKeySource.fromSsm: ${problem}`);
    return new ApiKeySource(KeySourceKind.SSM, undefined, props);
  }

  /** The kind of source. */
  public readonly kind: KeySourceKind;
  /** The Vault reference, when `kind` is `VAULT`. */
  public readonly vault?: VaultKeySourceProps;
  /** The SSM reference, when `kind` is `SSM`. */
  public readonly ssm?: SsmKeySourceProps;

  protected constructor(kind: KeySourceKind, vault?: VaultKeySourceProps, ssm?: SsmKeySourceProps) {
    this.kind = kind;
    // Copied field by field: only the reference's own fields can ever reach synth output.
    this.vault =
      vault === undefined
        ? undefined
        : { mount: vault.mount, path: vault.path, field: vault.field, version: vault.version };
    this.ssm = ssm === undefined ? undefined : { name: ssm.name, version: ssm.version, label: ssm.label };
  }

  /**
   * A printable form of the reference, for messages: `vault://secret/teams/ml/openai#api_key` or
   * `ssm:/rigbox/ml/openai`. It never holds a key.
   */
  public get reference(): string {
    if (this.vault) {
      const v = this.vault;
      const version = v.version === undefined ? '' : `?version=${v.version}`;
      return `vault://${vaultLocation(v.mount, v.path)}#${v.field}${version}`;
    }
    const s = this.ssm;
    if (!s) return 'none';
    const selector = s.version !== undefined ? `:${s.version}` : s.label !== undefined ? `:${s.label}` : '';
    return `ssm:${s.name}${selector}`;
  }

  /** Whether any part of the reference is an unresolved token (known only at plan time). */
  public get hasUnresolvedParts(): boolean {
    const parts: unknown[] = this.vault
      ? [this.vault.mount, this.vault.path, this.vault.field, this.vault.version]
      : [this.ssm?.name, this.ssm?.version, this.ssm?.label];
    return parts.some(isToken);
  }

  /**
   * The `api_key_source` block in Terraform JSON.
   *
   * @internal
   */
  public _toTerraform(): Record<string, unknown> {
    // Unset parts are left out rather than sent as undefined: less for cdktf to resolve.
    if (this.vault) {
      const { mount, path, field, version } = this.vault;
      const block: Record<string, unknown> = {
        mount: stringToTerraform(mount),
        path: stringToTerraform(path),
        field: stringToTerraform(field),
      };
      if (version !== undefined) block.version = numberToTerraform(version);
      return { vault: block };
    }
    const { name, version, label } = this.ssm ?? { name: '' };
    const block: Record<string, unknown> = { name: stringToTerraform(name) };
    if (version !== undefined) block.version = numberToTerraform(version);
    if (label !== undefined) block.label = stringToTerraform(label);
    return { ssm: block };
  }

  /**
   * The `api_key_source` block for cdktf's HCL output.
   *
   * @internal
   */
  public _toHclTerraform(): Record<string, unknown> {
    if (this.vault) {
      return {
        vault: hclBlock({
          mount: hclString(this.vault.mount),
          path: hclString(this.vault.path),
          field: hclString(this.vault.field),
          version: hclNumber(this.vault.version),
        }),
      };
    }
    return {
      ssm: hclBlock({
        name: hclString(this.ssm?.name),
        version: hclNumber(this.ssm?.version),
        label: hclString(this.ssm?.label),
      }),
    };
  }
}
