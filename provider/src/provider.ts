import { readFileSync } from 'node:fs';
import type { ObjectValue, Provider, SchemaSpec } from '@rigbox/tfplugin';
import { type Diagnostic, error, hasError, isUnknown, type Value } from '@rigbox/tfplugin';
import type { ProviderClient } from './provider-client.js';
import { AiDefaultsResource } from './resources/ai-defaults.resource.js';
import { ByokPolicyResource } from './resources/byok-policy.resource.js';
import { ByokReportDataSource } from './resources/byok-report.data-source.js';
import { WorkspaceAiConfigDataSource } from './resources/workspace-ai-config.data-source.js';
import { WorkspaceAiConfigResource } from './resources/workspace-ai-config.resource.js';
import { RigboxClient } from './rigbox-client.js';

const schema: SchemaSpec = {
  version: 0,
  block: {
    description:
      'The Rigbox provider manages workspace AI configs; keys come from Vault or AWS SSM at apply time.',
    attributes: {
      endpoint: {
        type: 'string',
        optional: true,
        description:
          'The Rigbox API base URL, e.g. `https://api.rigbox.dev`. Default: the `RIGBOX_ENDPOINT` environment variable. Requests to the API and to Vault go through the proxy `HTTPS_PROXY` or `HTTP_PROXY` names, except to hosts `NO_PROXY` lists.',
      },
      token: {
        type: 'string',
        optional: true,
        sensitive: true,
        description: 'A Rigbox API token. Default: the `RIGBOX_TOKEN` environment variable.',
      },
    },
    blocks: {
      vault: {
        nesting: 'single',
        block: {
          description: 'How to reach HashiCorp Vault for `api_key_source { vault { ... } }`.',
          attributes: {
            address: { type: 'string', optional: true, description: 'Vault address. Default: `VAULT_ADDR`.' },
            token: {
              type: 'string',
              optional: true,
              sensitive: true,
              description: 'Vault token. Default: `VAULT_TOKEN` (unless approle is set).',
            },
            namespace: {
              type: 'string',
              optional: true,
              description: 'Vault Enterprise/HCP namespace. Default: `VAULT_NAMESPACE`.',
            },
            ca_cert_file: {
              type: 'string',
              optional: true,
              description: "PEM file of the CA that signed Vault's certificate. Default: `VAULT_CACERT`.",
            },
          },
          blocks: {
            approle: {
              nesting: 'single',
              block: {
                description: 'Log in with AppRole instead of a token.',
                attributes: {
                  role_id: { type: 'string', required: true, description: 'The AppRole role id. Required.' },
                  secret_id: {
                    type: 'string',
                    required: true,
                    sensitive: true,
                    description: 'The AppRole secret id. Required.',
                  },
                  mount: {
                    type: 'string',
                    optional: true,
                    description: 'The AppRole auth mount. Default: `approle`.',
                  },
                },
              },
            },
          },
        },
      },
      aws: {
        nesting: 'single',
        block: {
          description:
            'How to reach AWS SSM for `api_key_source { ssm { ... } }`; credentials come from the standard AWS chain.',
          attributes: {
            region: {
              type: 'string',
              optional: true,
              description: 'AWS region. Default: `AWS_REGION` / `AWS_DEFAULT_REGION`.',
            },
            endpoint: {
              type: 'string',
              optional: true,
              description:
                'SSM endpoint override. Default: `AWS_ENDPOINT_URL_SSM` / `AWS_ENDPOINT_URL`, else AWS.',
            },
          },
        },
      },
    },
  },
};

const str = (v: Value | undefined) => (typeof v === 'string' && v !== '' ? v : undefined);
const block = (v: Value | undefined) =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as ObjectValue) : undefined;
const firstEnv = (...names: string[]) =>
  names.map((n) => process.env[n]).find((v) => v !== undefined && v !== '');

export class RigboxProvider implements Provider<ProviderClient> {
  readonly address = 'rigbox/rigbox';
  readonly schema = schema;
  readonly resources = [new WorkspaceAiConfigResource(), new AiDefaultsResource(), new ByokPolicyResource()];
  readonly dataSources = [new WorkspaceAiConfigDataSource(), new ByokReportDataSource()];

  validate(config: ObjectValue): Diagnostic[] {
    const endpoint = str(config.endpoint);
    if (endpoint && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
      return [error('Invalid Endpoint', `endpoint must be an http(s) URL, got "${endpoint}".`, ['endpoint'])];
    }
    return [];
  }

  async configure(config: ObjectValue): Promise<{ client?: ProviderClient; diagnostics: Diagnostic[] }> {
    const diagnostics: Diagnostic[] = [];
    for (const name of ['endpoint', 'token'] as const) {
      if (isUnknown(config[name])) {
        diagnostics.push(
          error(
            'Unknown Provider Setting',
            `${name} must be known before apply (it depends on a value not yet created).`,
            [name],
          ),
        );
      }
    }
    const endpoint = str(config.endpoint) ?? firstEnv('RIGBOX_ENDPOINT');
    const token = str(config.token) ?? firstEnv('RIGBOX_TOKEN');
    if (!endpoint) {
      diagnostics.push(
        error(
          'Missing Rigbox Endpoint',
          'Set endpoint in the provider block or the RIGBOX_ENDPOINT environment variable.',
          ['endpoint'],
        ),
      );
    }
    if (!token) {
      diagnostics.push(
        error(
          'Missing Rigbox Token',
          'Set token in the provider block or the RIGBOX_TOKEN environment variable.',
          ['token'],
        ),
      );
    }
    const vault = block(config.vault);
    const approle = block(vault?.approle);
    const aws = block(config.aws);
    let caCertPem: string | undefined;
    const caFile = str(vault?.ca_cert_file) ?? firstEnv('VAULT_CACERT');
    if (caFile) {
      try {
        caCertPem = readFileSync(caFile, 'utf8');
      } catch {
        diagnostics.push(
          error('Cannot Read Vault CA Certificate', `Cannot read ${caFile}.`, ['vault', 'ca_cert_file']),
        );
      }
    }
    if (hasError(diagnostics) || !endpoint || !token) return { diagnostics };
    const vaultAddress = str(vault?.address) ?? firstEnv('VAULT_ADDR');
    const vaultToken = str(vault?.token) ?? (approle ? undefined : firstEnv('VAULT_TOKEN'));
    const namespace = str(vault?.namespace) ?? firstEnv('VAULT_NAMESPACE');
    const region = str(aws?.region) ?? firstEnv('AWS_REGION', 'AWS_DEFAULT_REGION');
    const ssmEndpoint = str(aws?.endpoint) ?? firstEnv('AWS_ENDPOINT_URL_SSM', 'AWS_ENDPOINT_URL');
    const client: ProviderClient = {
      rigbox: new RigboxClient(endpoint, token),
      keySources: {
        ...(vaultAddress
          ? {
              vault: {
                address: vaultAddress,
                ...(vaultToken ? { token: vaultToken } : {}),
                ...(namespace ? { namespace } : {}),
                ...(caCertPem ? { caCertPem } : {}),
                ...(approle
                  ? {
                      approle: {
                        roleId: String(approle.role_id),
                        secretId: String(approle.secret_id),
                        ...(str(approle.mount) ? { mount: str(approle.mount) as string } : {}),
                      },
                    }
                  : {}),
              },
            }
          : {}),
        ssm: { ...(region ? { region } : {}), ...(ssmEndpoint ? { endpoint: ssmEndpoint } : {}) },
      },
    };
    return { client, diagnostics };
  }
}
