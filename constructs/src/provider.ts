import { stringToTerraform, TerraformProvider } from 'cdktf';
import type { Construct } from 'constructs';
import { isToken } from './private/checks';
import { hclBlock, hclString, withoutUndefined } from './private/hcl';

/** Log in to Vault with AppRole instead of a token. */
export interface RigboxProviderVaultAppRole {
  /**
   * The AppRole role id.
   */
  readonly roleId: string;
  /**
   * The AppRole secret id. A credential, so it must be a token (for example a sensitive
   * `TerraformVariable`'s `stringValue`); a literal is refused because it would be written to the
   * synthesized configuration.
   */
  readonly secretId: string;
  /**
   * The AppRole auth mount.
   *
   * @default "approle"
   */
  readonly mount?: string;
}

/** How the provider reaches HashiCorp Vault for `ApiKeySource.fromVault` references. */
export interface RigboxProviderVaultConfig {
  /**
   * The Vault address, e.g. `https://vault.example.com:8200`.
   *
   * @default - the `VAULT_ADDR` environment variable at plan and apply time
   */
  readonly address?: string;
  /**
   * A Vault token. A credential, so it must be a token (for example a sensitive
   * `TerraformVariable`'s `stringValue`); a literal is refused.
   *
   * @default - the `VAULT_TOKEN` environment variable (unless `approle` is set)
   */
  readonly token?: string;
  /**
   * The Vault Enterprise / HCP namespace.
   *
   * @default - the `VAULT_NAMESPACE` environment variable
   */
  readonly namespace?: string;
  /**
   * A PEM file with the CA that signed Vault's certificate.
   *
   * @default - the `VAULT_CACERT` environment variable, else the system's CAs
   */
  readonly caCertFile?: string;
  /**
   * Log in with AppRole.
   *
   * @default - no AppRole login: `token` / `VAULT_TOKEN` is used
   */
  readonly approle?: RigboxProviderVaultAppRole;
}

/** How the provider reaches AWS SSM for `ApiKeySource.fromSsm` references. Credentials come from the standard AWS chain. */
export interface RigboxProviderAwsConfig {
  /**
   * The AWS region.
   *
   * @default - `AWS_REGION` / `AWS_DEFAULT_REGION`
   */
  readonly region?: string;
  /**
   * An SSM endpoint override, e.g. a VPC endpoint.
   *
   * @default - `AWS_ENDPOINT_URL_SSM` / `AWS_ENDPOINT_URL`, else AWS
   */
  readonly endpoint?: string;
}

/** Settings of the `rigbox/rigbox` provider. */
export interface RigboxProviderProps {
  /**
   * The Rigbox API base URL, e.g. `https://api.rigbox.dev`.
   *
   * @default - the `RIGBOX_ENDPOINT` environment variable at plan and apply time
   */
  readonly endpoint?: string;
  /**
   * A Rigbox API token. A credential, so it must be a token (for example a sensitive
   * `TerraformVariable`'s `stringValue`); a literal is refused because it would be written to the
   * synthesized configuration.
   *
   * @default - the `RIGBOX_TOKEN` environment variable at plan and apply time
   */
  readonly token?: string;
  /**
   * How to reach Vault.
   *
   * @default - Vault settings from the `VAULT_*` environment variables
   */
  readonly vault?: RigboxProviderVaultConfig;
  /**
   * How to reach AWS SSM.
   *
   * @default - AWS settings from the standard AWS environment and config files
   */
  readonly aws?: RigboxProviderAwsConfig;
  /**
   * An alias, to configure the provider more than once (e.g. per Rigbox organisation).
   *
   * @default - the default provider configuration
   */
  readonly alias?: string;
}

function refuseLiteralCredential(what: string, value: string | undefined): void {
  if (value !== undefined && !isToken(value)) {
    throw new Error(
      `RigboxProvider: ${what} must not be a literal, or it would be written to the synthesized configuration. ` +
        'Pass a token instead, such as a sensitive TerraformVariable, or leave it unset and use the environment variable.',
    );
  }
}

/**
 * The `rigbox/rigbox` Terraform provider: manages Rigbox workspace AI configs, reading BYOK keys
 * from Vault or AWS SSM at apply time.
 *
 * With no props it reads its settings from `RIGBOX_ENDPOINT`, `RIGBOX_TOKEN`, the `VAULT_*`
 * variables and the standard AWS chain when Terraform runs, which keeps every credential out of the
 * synthesized configuration.
 */
export class RigboxProvider extends TerraformProvider {
  /** The provider's Terraform type name. */
  public static readonly tfResourceType = 'rigbox';

  /** The configured endpoint, if any. */
  public readonly endpoint?: string;
  private readonly props: RigboxProviderProps;
  private _alias?: string;

  /**
   * @param scope the stack (or other scope) to define the provider in
   * @param id the construct id, unique among its siblings
   * @param props the provider settings; all optional
   */
  constructor(scope: Construct, id: string, props: RigboxProviderProps = {}) {
    super(scope, id, {
      terraformResourceType: 'rigbox',
      terraformGeneratorMetadata: { providerName: 'rigbox', providerVersionConstraint: '~> 0.1' },
      terraformProviderSource: 'rigbox/rigbox',
    });
    if (
      props.endpoint !== undefined &&
      !isToken(props.endpoint) &&
      !/^https?:\/\/[^\s/]+/.test(props.endpoint)
    ) {
      throw new Error(`RigboxProvider: endpoint must be an http(s) URL, got "${props.endpoint}"`);
    }
    refuseLiteralCredential('token', props.token);
    refuseLiteralCredential('vault.token', props.vault?.token);
    refuseLiteralCredential('vault.approle.secretId', props.vault?.approle?.secretId);
    this.props = props;
    this.endpoint = props.endpoint;
    this._alias = props.alias;
  }

  /** The provider alias, if any; resources pick this configuration with their `provider` prop. */
  public override get alias(): string | undefined {
    return this._alias;
  }

  public override set alias(value: string | undefined) {
    this._alias = value;
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    const { vault, aws } = this.props;
    return {
      endpoint: stringToTerraform(this.props.endpoint),
      token: stringToTerraform(this.props.token),
      alias: stringToTerraform(this._alias),
      vault:
        vault === undefined
          ? undefined
          : {
              address: stringToTerraform(vault.address),
              token: stringToTerraform(vault.token),
              namespace: stringToTerraform(vault.namespace),
              ca_cert_file: stringToTerraform(vault.caCertFile),
              approle:
                vault.approle === undefined
                  ? undefined
                  : {
                      role_id: stringToTerraform(vault.approle.roleId),
                      secret_id: stringToTerraform(vault.approle.secretId),
                      mount: stringToTerraform(vault.approle.mount),
                    },
            },
      aws:
        aws === undefined
          ? undefined
          : { region: stringToTerraform(aws.region), endpoint: stringToTerraform(aws.endpoint) },
    };
  }

  protected override synthesizeHclAttributes(): { [name: string]: unknown } {
    const { vault, aws } = this.props;
    return withoutUndefined({
      endpoint: hclString(this.props.endpoint),
      token: hclString(this.props.token),
      alias: hclString(this._alias),
      vault: hclBlock(
        vault === undefined
          ? undefined
          : {
              address: hclString(vault.address),
              token: hclString(vault.token),
              namespace: hclString(vault.namespace),
              ca_cert_file: hclString(vault.caCertFile),
              approle: hclBlock(
                vault.approle === undefined
                  ? undefined
                  : {
                      role_id: hclString(vault.approle.roleId),
                      secret_id: hclString(vault.approle.secretId),
                      mount: hclString(vault.approle.mount),
                    },
              ),
            },
      ),
      aws: hclBlock(
        aws === undefined ? undefined : { region: hclString(aws.region), endpoint: hclString(aws.endpoint) },
      ),
    });
  }
}
