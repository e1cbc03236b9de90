import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { AiProvider } from '@rigbox/cdktf-constructs';
import { describe, expect, it } from 'vitest';
import { tofuValidate } from './support/cdktf.js';
import { byokFromVault as byok, CDKTF, CDKTN, FLAVORS, resourceOf } from './support/constructs.js';

/**
 * The constructs, one by one: a synth snapshot (committed; CI never writes one), "is valid
 * Terraform" (real `tofu validate` against the real provider schema), targeted property matchers,
 * and the eager checks that refuse a wrong prop at once. The same suite runs against both builds of
 * the library: for cdktf and for cdktn (each with its own snapshots).
 */

async function expectValidTerraform(json: string) {
  const res = await tofuValidate(json);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  expect(res.stdout).toContain('The configuration is valid');
}

describe.each(FLAVORS)('$packageName', (flavor) => {
  const { TerraformOutput, TerraformStack, TerraformVariable, Testing, Token } = flavor.core;
  const {
    AiMode,
    AiProvider,
    ApiKeySource,
    KeySourceKind,
    RigboxAiDefaults,
    RigboxProvider,
    RigboxWorkspaceAiConfig,
  } = flavor.lib;
  const snapshot = (name: string) => `${flavor.snapshots}/${name}`;
  const byokFromVault = (overrides: Parameters<typeof byok>[0] = {}) => byok(overrides, flavor);
  const stackWithProvider = () => {
    const stack = new TerraformStack(Testing.app(), 'stack');
    new RigboxProvider(stack, 'rigbox');
    return stack;
  };

  describe('RigboxWorkspaceAiConfig', () => {
    const synthVault = () =>
      Testing.synthScope((scope) => {
        new RigboxProvider(scope, 'rigbox');
        new RigboxWorkspaceAiConfig(scope, 'ml', byokFromVault({ apiKeySource: vaultPinned() }));
      });
    const vaultPinned = () =>
      ApiKeySource.fromVault({ mount: 'secret', path: 'teams/ml/openai', field: 'api_key', version: 3 });
    const synthSsm = () =>
      Testing.synthScope((scope) => {
        new RigboxProvider(scope, 'rigbox');
        new RigboxWorkspaceAiConfig(scope, 'research', {
          workspaceId: 'ws_research',
          mode: AiMode.BYOK,
          aiProvider: AiProvider.ANTHROPIC,
          apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/research/anthropic', label: 'current' }),
        });
        new RigboxWorkspaceAiConfig(scope, 'support', {
          workspaceId: 'ws_support',
          mode: AiMode.MANAGED,
          aiProvider: AiProvider.GOOGLE,
          model: 'google/gemini-2.5-pro',
        });
      });

    it('synth snapshot (Vault and SSM sources, managed mode)', async () => {
      await expect(synthVault()).toMatchFileSnapshot(snapshot('workspace-ai-config.vault.json'));
      await expect(synthSsm()).toMatchFileSnapshot(snapshot('workspace-ai-config.ssm-and-managed.json'));
    });

    it('is valid Terraform', async () => {
      await expectValidTerraform(synthVault());
      await expectValidTerraform(synthSsm());
    });

    it('emits exactly the provider attribute names', () => {
      const out = synthVault();
      expect(
        Testing.toHaveResourceWithProperties(out, RigboxWorkspaceAiConfig.tfResourceType, {
          workspace_id: 'ws_ml',
          mode: 'byok',
          ai_provider: 'openai',
          model: 'gpt-4o',
          api_key_source: {
            vault: { mount: 'secret', path: 'teams/ml/openai', field: 'api_key', version: 3 },
          },
        }),
      ).toBe(true);
      expect(Object.keys(resourceOf(out, 'rigbox_workspace_ai_config', 'ml')).sort()).toEqual([
        'ai_provider',
        'api_key_source',
        'mode',
        'model',
        'workspace_id',
      ]);
      const research = resourceOf(synthSsm(), 'rigbox_workspace_ai_config', 'research');
      expect(research.api_key_source).toEqual({
        ssm: { name: '/rigbox/research/anthropic', label: 'current' },
      });
      expect(research).not.toHaveProperty('model');
      expect(resourceOf(synthSsm(), 'rigbox_workspace_ai_config', 'support')).not.toHaveProperty(
        'api_key_source',
      );
    });

    it('exposes computed attributes as references', () => {
      const stack = stackWithProvider();
      const ml = new RigboxWorkspaceAiConfig(stack, 'ml', byokFromVault());
      const refs = {
        apiKeyFingerprint: ml.apiKeyFingerprint,
        sourceVersion: ml.sourceVersion,
        revision: ml.revision,
        updatedAt: ml.updatedAt,
        apiKeySet: ml.apiKeySet,
        id: ml.id,
        workspaceId: ml.workspaceId,
      };
      for (const [name, value] of Object.entries(refs)) new TerraformOutput(stack, name, { value });
      const out = JSON.parse(Testing.synth(stack)).output;
      expect(
        Object.fromEntries(Object.entries(out).map(([k, v]) => [k, (v as { value: unknown }).value])),
      ).toEqual({
        apiKeyFingerprint: '${rigbox_workspace_ai_config.ml.api_key_fingerprint}',
        sourceVersion: '${rigbox_workspace_ai_config.ml.source_version}',
        revision: '${rigbox_workspace_ai_config.ml.revision}',
        updatedAt: '${rigbox_workspace_ai_config.ml.updated_at}',
        apiKeySet: '${rigbox_workspace_ai_config.ml.api_key_set}',
        id: '${rigbox_workspace_ai_config.ml.id}',
        workspaceId: '${rigbox_workspace_ai_config.ml.workspace_id}',
      });
      expect(ml.mode).toBe(AiMode.BYOK);
      expect(ml.aiProvider).toBe(AiProvider.OPENAI);
      expect(ml.apiKeySource?.kind).toBe(KeySourceKind.VAULT);
      expect(ml.apiKeySource?.reference).toBe('vault://secret/teams/ml/openai#api_key');
    });

    it('takes tokens (e.g. variables) anywhere and leaves their checks to plan time', async () => {
      const out = Testing.synthScope((scope) => {
        new RigboxProvider(scope, 'rigbox');
        const v = (name: string, type = 'string') => new TerraformVariable(scope, name, { type });
        new RigboxWorkspaceAiConfig(scope, 'ml', {
          workspaceId: v('workspace_id').stringValue,
          mode: AiMode.BYOK,
          aiProvider: AiProvider.custom(v('ai_provider').stringValue),
          model: v('model').stringValue,
          apiKeySource: ApiKeySource.fromVault({
            mount: v('mount').stringValue,
            path: v('path').stringValue,
            field: v('field').stringValue,
            version: v('secret_version', 'number').numberValue,
          }),
        });
      });
      expect(resourceOf(out, 'rigbox_workspace_ai_config', 'ml')).toEqual({
        workspace_id: '${var.workspace_id}',
        mode: 'byok',
        ai_provider: '${var.ai_provider}',
        model: '${var.model}',
        api_key_source: {
          vault: {
            mount: '${var.mount}',
            path: '${var.path}',
            field: '${var.field}',
            version: '${var.secret_version}',
          },
        },
      });
      await expectValidTerraform(out);
    });

    it('renders as HCL too (cdktf synth --hcl) and that HCL is valid', async () => {
      const stack = stackWithProvider();
      new RigboxWorkspaceAiConfig(stack, 'ml', byokFromVault());
      new RigboxAiDefaults(stack, 'defaults', {
        mode: AiMode.BYOK,
        aiProvider: AiProvider.ANTHROPIC,
        apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/platform/anthropic', version: 2 }),
      });
      const hcl: string = Testing.synthHcl(stack);
      expect(hcl).toMatch(/api_key_source\s*{\s*vault\s*{/);
      expect(hcl).toMatch(/ssm\s*{\s*name\s*=\s*"\/rigbox\/platform\/anthropic"\s*version\s*=\s*2/);
      const { TofuWorkspace } = await import('./support/tofu.js');
      const tofu = new TofuWorkspace();
      try {
        tofu.write(hcl);
        expect((await tofu.run(['init', '-no-color', '-backend=false'])).code).toBe(0);
        const res = await tofu.run(['validate', '-no-color']);
        expect(res.code, res.stderr).toBe(0);
      } finally {
        tofu.dispose();
      }
    });

    describe('refuses a wrong prop at once', () => {
      const make = (props: Partial<Parameters<typeof byokFromVault>[0]>) => () =>
        new RigboxWorkspaceAiConfig(stackWithProvider(), 'ml', byokFromVault(props));

      it('byok without a key source, saying keys go by reference', () => {
        expect(make({ apiKeySource: undefined })).toThrow(
          /stack\/ml.*mode BYOK needs an apiKeySource.*reference/,
        );
      });
      it('managed with a key source', () => {
        expect(make({ mode: AiMode.MANAGED })).toThrow(/MANAGED.*remove apiKeySource/);
      });
      it('managed with a BYOK-only provider', () => {
        expect(make({ mode: AiMode.MANAGED, aiProvider: AiProvider.GROQ, apiKeySource: undefined })).toThrow(
          /"groq" needs AiMode.BYOK/,
        );
      });
      it('a malformed model, an empty workspace id, a string where an AiProvider belongs', () => {
        expect(make({ model: 'gpt 4o' })).toThrow(/model "gpt 4o"/);
        expect(make({ workspaceId: ' ' })).toThrow(/workspaceId is empty/);
        expect(make({ aiProvider: 'openai' as unknown as AiProvider })).toThrow(
          /aiProvider must be an AiProvider/,
        );
      });
    });
  });

  describe('RigboxAiDefaults', () => {
    const synth = () =>
      Testing.synthScope((scope) => {
        new RigboxProvider(scope, 'rigbox');
        new RigboxAiDefaults(scope, 'defaults', {
          mode: AiMode.BYOK,
          aiProvider: AiProvider.ANTHROPIC,
          model: 'claude-sonnet-4-20250514',
          apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/platform/anthropic' }),
        });
      });

    it('synth snapshot', async () => {
      await expect(synth()).toMatchFileSnapshot(snapshot('ai-defaults.json'));
    });

    it('is valid Terraform', async () => {
      await expectValidTerraform(synth());
    });

    it('emits the defaults resource without a workspace', () => {
      expect(resourceOf(synth(), RigboxAiDefaults.tfResourceType, 'defaults')).toEqual({
        mode: 'byok',
        ai_provider: 'anthropic',
        model: 'claude-sonnet-4-20250514',
        api_key_source: { ssm: { name: '/rigbox/platform/anthropic' } },
      });
    });
  });

  describe('RigboxProvider', () => {
    const synth = () =>
      Testing.synthScope((scope) => {
        const token = new TerraformVariable(scope, 'rigbox_token', { type: 'string', sensitive: true });
        const secretId = new TerraformVariable(scope, 'vault_secret_id', { type: 'string', sensitive: true });
        new RigboxProvider(scope, 'rigbox', {
          endpoint: 'https://api.rigbox.dev',
          token: token.stringValue,
          vault: {
            address: 'https://vault.example.com:8200',
            namespace: 'platform',
            caCertFile: '/etc/ssl/vault-ca.pem',
            approle: { roleId: 'rigbox-role', secretId: secretId.stringValue, mount: 'approle' },
          },
          aws: { region: 'eu-west-1', endpoint: 'https://ssm.eu-west-1.amazonaws.com' },
          alias: 'eu',
        });
      });

    it('synth snapshot', async () => {
      await expect(synth()).toMatchFileSnapshot(snapshot('provider.json'));
    });

    it('is valid Terraform', async () => {
      await expectValidTerraform(synth());
    });

    it('requires rigbox/rigbox and emits the provider schema names', () => {
      const out = JSON.parse(synth());
      expect(out.terraform.required_providers.rigbox).toEqual({ source: 'rigbox/rigbox', version: '~> 0.1' });
      expect(out.provider.rigbox[0]).toEqual({
        alias: 'eu',
        endpoint: 'https://api.rigbox.dev',
        token: '${var.rigbox_token}',
        vault: {
          address: 'https://vault.example.com:8200',
          namespace: 'platform',
          ca_cert_file: '/etc/ssl/vault-ca.pem',
          approle: { role_id: 'rigbox-role', secret_id: '${var.vault_secret_id}', mount: 'approle' },
        },
        aws: { region: 'eu-west-1', endpoint: 'https://ssm.eu-west-1.amazonaws.com' },
      });
    });

    it('with no props writes no settings at all (they come from the environment)', () => {
      const out = JSON.parse(Testing.synthScope((scope) => void new RigboxProvider(scope, 'rigbox')));
      expect(out.provider.rigbox).toEqual([{}]);
    });

    it('an aliased provider is picked by a resource', () => {
      const out = Testing.synthScope((scope) => {
        const eu = new RigboxProvider(scope, 'eu', { alias: 'eu' });
        new RigboxWorkspaceAiConfig(scope, 'ml', byokFromVault({ provider: eu }));
      });
      expect(resourceOf(out, 'rigbox_workspace_ai_config', 'ml').provider).toBe('rigbox.eu');
    });

    it('refuses literal credentials and a malformed endpoint', () => {
      const stack = () => new TerraformStack(Testing.app(), 'stack');
      expect(() => new RigboxProvider(stack(), 'p', { token: 'rbx_literal' })).toThrow(
        /token must not be a literal/,
      );
      expect(() => new RigboxProvider(stack(), 'p', { vault: { token: 'hvs.literal' } })).toThrow(
        /vault.token must not be a literal/,
      );
      expect(
        () => new RigboxProvider(stack(), 'p', { vault: { approle: { roleId: 'r', secretId: 'literal' } } }),
      ).toThrow(/vault.approle.secretId must not be a literal/);
      expect(() => new RigboxProvider(stack(), 'p', { endpoint: 'api.rigbox.dev' })).toThrow(/http\(s\) URL/);
    });
  });

  describe('ApiKeySource', () => {
    it('fromVault refuses the KV v2 API path and says which path to use', () => {
      expect(() => ApiKeySource.fromVault({ mount: 'secret', path: 'data/teams/ml', field: 'k' })).toThrow(
        /contains the KV v2 API's "data\/" segment.*path "teams\/ml"/,
      );
      expect(() =>
        ApiKeySource.fromVault({ mount: 'secret', path: 'secret/data/teams/ml', field: 'k' }),
      ).toThrow(/path "teams\/ml"\), as in `vault kv get -mount=secret teams\/ml`/);
      expect(() => ApiKeySource.fromVault({ mount: 'secret', path: 'teams/data/ml', field: 'k' })).toThrow(
        /data\//,
      );
    });

    it('fromVault refuses empty parts, dot segments and bad versions', () => {
      const bad = (mount: string, path: string, field: string, version?: number) => () =>
        ApiKeySource.fromVault({ mount, path, field, version });
      expect(bad('', 'a', 'k')).toThrow(/mount is empty/);
      expect(bad('secret', '/', 'k')).toThrow(/path is empty/);
      expect(bad('secret', 'a', ' ')).toThrow(/field is empty/);
      expect(bad('secret', 'teams/../admin', 'k')).toThrow(/".." segment/);
      expect(bad('secret', 'teams//ml', 'k')).toThrow(/empty segment/);
      expect(bad('secret', 'teams/ml?x=1', 'k')).toThrow(/"\?"/);
      expect(bad('secret', 'teams/ml', 'k', 0)).toThrow(/at least 1/);
      expect(bad('secret', 'teams/ml', 'k', 1.5)).toThrow(/whole number/);
    });

    it('fromSsm refuses malformed names and selectors', () => {
      const bad = (name: string, version?: number, label?: string) => () =>
        ApiKeySource.fromSsm({ name, version, label });
      expect(bad('')).toThrow(/name is empty/);
      expect(bad('/rigbox/ml:3')).toThrow(/contains ":"/);
      expect(bad('rigbox/ml')).toThrow(/must begin with "\/"/);
      expect(bad('/rigbox//ml')).toThrow(/empty path segment/);
      expect(bad('/rigbox/ml key')).toThrow(/may only contain/);
      expect(bad('arn:aws:ssm:eu-west-1:12:parameter/x')).toThrow(/is not an SSM parameter ARN/);
      expect(bad('/rigbox/ml', 2, 'current')).toThrow(/either an SSM version or an SSM label/);
      expect(bad('/rigbox/ml', undefined, 'aws-x')).toThrow(/must not begin with "aws"/);
      expect(bad('/rigbox/ml', undefined, '1st')).toThrow(/must not begin with a digit/);
    });

    it('accepts ARNs, and references whose parts are unresolved tokens', () => {
      expect(
        ApiKeySource.fromSsm({ name: 'arn:aws:ssm:eu-west-1:123456789012:parameter/rigbox/ml' }).reference,
      ).toBe('ssm:arn:aws:ssm:eu-west-1:123456789012:parameter/rigbox/ml');
      const token = Token.asString({ Ref: 'x' });
      const source = ApiKeySource.fromVault({ mount: token, path: token, field: token });
      expect(source.hasUnresolvedParts).toBe(true);
      expect(
        ApiKeySource.fromSsm({ name: token, version: Token.asNumber({ Ref: 'v' }) }).hasUnresolvedParts,
      ).toBe(true);
    });

    it('is made only by its factories (the constructor is protected: root tsc checks this line)', () => {
      // @ts-expect-error: the constructor is protected, so no reference can be made outside fromVault/fromSsm.
      const make = () => new ApiKeySource(KeySourceKind.VAULT);
      expect(typeof make).toBe('function');
    });
  });

  describe('AiProvider', () => {
    it('lists the providers Rigbox serves and takes a custom id', () => {
      expect(AiProvider.OPENAI.id).toBe('openai');
      expect(AiProvider.OPENAI.servedInManagedMode).toBe(true);
      expect(AiProvider.MISTRAL.servedInManagedMode).toBe(false);
      expect(AiProvider.custom('perplexity').id).toBe('perplexity');
      expect(AiProvider.custom('perplexity').isKnown).toBe(false);
      expect(() => AiProvider.custom('Open AI')).toThrow(/not a provider id/);
    });
  });
});

describe('the two builds', () => {
  it('write the same Terraform for the same program', () => {
    const synth = ({ core, lib }: typeof CDKTF) =>
      JSON.parse(
        core.Testing.synthScope((scope) => {
          const v = new core.TerraformVariable(scope, 'model', { type: 'string' });
          new lib.RigboxProvider(scope, 'rigbox', { endpoint: 'https://api.rigbox.dev' });
          new lib.RigboxWorkspaceAiConfig(scope, 'ml', {
            workspaceId: 'ws_ml',
            mode: lib.AiMode.BYOK,
            aiProvider: lib.AiProvider.OPENAI,
            model: v.stringValue,
            apiKeySource: lib.ApiKeySource.fromVault({
              mount: 'secret',
              path: 'teams/ml',
              field: 'k',
              version: 2,
            }),
          });
          new lib.RigboxAiDefaults(scope, 'defaults', {
            mode: lib.AiMode.MANAGED,
            aiProvider: lib.AiProvider.custom('anthropic'),
          });
        }),
      );
    expect(synth(CDKTN)).toEqual(synth(CDKTF));
  });

  it('are not interchangeable: the cdktf build in a cdktn app fails App.synth (why there are two)', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'rigbox-mixed-'));
    try {
      const app = new CDKTN.core.App({ outdir });
      const stack = new CDKTN.core.TerraformStack(app, 'stack');
      new CDKTF.lib.RigboxProvider(stack, 'rigbox');
      new CDKTF.lib.RigboxWorkspaceAiConfig(stack, 'ml', byok({}, CDKTF));
      expect(() => app.synth()).toThrow(/_resetResolveDiscoveredProviderFeatureUsage is not a function/);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  it('each name only its own core package in their jsii assemblies', () => {
    const assembly = (flavor: typeof CDKTF) => {
      const dir = dirname(createRequire(import.meta.url).resolve(`${flavor.packageName}/package.json`));
      return JSON.parse(readFileSync(join(dir, '.jsii'), 'utf8'));
    };
    const cdktf = assembly(CDKTF);
    const cdktn = assembly(CDKTN);
    expect(Object.keys(cdktf.dependencies).sort()).toEqual(['cdktf', 'constructs']);
    expect(Object.keys(cdktn.dependencies).sort()).toEqual(['cdktn', 'constructs']);
    expect(cdktn.dependencies.cdktn).toBe('^0.24.0');
    expect(cdktn.targets.python).toEqual({
      distName: 'rigbox-cdktn-constructs',
      module: 'rigbox_cdktn_constructs',
    });
    expect(JSON.stringify(cdktn.types)).not.toMatch(/cdktf/);
    // The same API: every type and member of one is in the other.
    const api = (a: { types: Record<string, unknown> }) =>
      JSON.stringify(Object.values(a.types)).replaceAll(/cdkt[fn]/g, 'cdk');
    expect(api(cdktn)).toBe(api(cdktf));
  });
});
