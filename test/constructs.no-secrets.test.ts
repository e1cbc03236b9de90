import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { RigboxWorkspaceAiConfigProps } from '@rigbox/cdktf-constructs';
import { afterEach, describe, expect, it } from 'vitest';
import { FLAVORS } from './support/constructs.js';
import { canaryKey } from './support/harness.js';

/**
 * No key can enter synth output: the constructs take references only. With canary references and
 * canary keys planted wherever a careless construct might pick one up (the environment, extra
 * props), the synthesized files hold the references and the plain settings, and nothing else.
 * For both builds of the library (cdktf and cdktn).
 */

const planted = {
  OPENAI_API_KEY: canaryKey('sk-proj-'),
  ANTHROPIC_API_KEY: canaryKey('sk-ant-api03-'),
  RIGBOX_TOKEN: canaryKey('rbx_'),
  VAULT_TOKEN: canaryKey('hvs.'),
  AWS_SECRET_ACCESS_KEY: canaryKey('aws'),
  TF_VAR_openai_key: canaryKey('sk-proj-'),
};
const extraPropKey = canaryKey('sk-proj-');
const saved: Record<string, string | undefined> = {};

afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** Random reference parts, so that each must come from the reference and from nowhere else. */
const marker = (prefix: string) => `${prefix}${canaryKey('').replace('CANARY', 'ref').slice(0, 16)}`;

function leafStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string' || typeof value === 'number') out.push(String(value));
  else if (Array.isArray(value)) for (const v of value) leafStrings(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) leafStrings(v, out);
  return out;
}

describe.each(FLAVORS)('$packageName: synth output holds references, never keys', (flavor) => {
  const { TerraformStack, TerraformVariable, Testing } = flavor.core;
  const { AiMode, AiProvider, ApiKeySource, RigboxAiDefaults, RigboxProvider, RigboxWorkspaceAiConfig } =
    flavor.lib;

  it('a full synth with canary references and planted keys writes only the references', () => {
    for (const [name, value] of Object.entries(planted)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
    const vault = {
      mount: marker('kv'),
      path: `${marker('teams')}/${marker('ml')}`,
      field: marker('f'),
      version: 7,
    };
    const ssm = { name: `/${marker('rigbox')}/${marker('anthropic')}`, label: marker('L') };
    const settings = { workspaceId: marker('ws_'), model: marker('model-') };

    const stack = new TerraformStack(Testing.app(), 'stack');
    new RigboxProvider(stack, 'rigbox', {
      token: new TerraformVariable(stack, 'rigbox_token', { type: 'string', sensitive: true }).stringValue,
    });
    // A careless caller passing a key among the props (not part of the type) and on the reference.
    const withStray = {
      workspaceId: settings.workspaceId,
      mode: AiMode.BYOK,
      aiProvider: AiProvider.OPENAI,
      model: settings.model,
      apiKeySource: ApiKeySource.fromVault({
        ...vault,
        apiKey: extraPropKey,
        value: extraPropKey,
      } as typeof vault),
      apiKey: extraPropKey,
      api_key: extraPropKey,
      apiKeyWo: extraPropKey,
    } as RigboxWorkspaceAiConfigProps;
    new RigboxWorkspaceAiConfig(stack, 'ml', withStray);
    new RigboxAiDefaults(stack, 'defaults', {
      mode: AiMode.BYOK,
      aiProvider: AiProvider.ANTHROPIC,
      apiKeySource: ApiKeySource.fromSsm(ssm),
    });

    const outdir = Testing.fullSynth(stack);
    try {
      const files = readdirSync(outdir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'));
      expect(files.length).toBeGreaterThan(0);
      for (const text of files) {
        for (const [name, key] of Object.entries({ ...planted, extraPropKey })) {
          expect(text, `${name} in synth output`).not.toContain(key);
        }
      }

      const tf = JSON.parse(readFileSync(join(outdir, 'stacks/stack/cdk.tf.json'), 'utf8'));
      // The provider block holds only the reference to the sensitive variable.
      expect(tf.provider.rigbox).toEqual([{ token: '${var.rigbox_token}' }]);
      const { '//': _ml, ...ml } = tf.resource.rigbox_workspace_ai_config.ml;
      const { '//': _defaults, ...defaults } = tf.resource.rigbox_ai_defaults.defaults;
      // Exactly the reference's own fields, and no other attribute that could carry a key.
      expect(ml).toEqual({
        workspace_id: settings.workspaceId,
        mode: 'byok',
        ai_provider: 'openai',
        model: settings.model,
        api_key_source: { vault },
      });
      expect(defaults).toEqual({ mode: 'byok', ai_provider: 'anthropic', api_key_source: { ssm } });
      // Every value in the rigbox resources is a setting or a part of a reference.
      const allowed = new Set([
        ...leafStrings(settings),
        ...leafStrings(vault),
        ...leafStrings(ssm),
        'byok',
        'openai',
        'anthropic',
      ]);
      for (const value of leafStrings([ml, defaults])) expect(allowed.has(value), value).toBe(true);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  it('the props have no field for a key (checked by root tsc)', () => {
    const props: RigboxWorkspaceAiConfigProps = {
      workspaceId: 'ws',
      mode: AiMode.BYOK,
      aiProvider: AiProvider.OPENAI,
      apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/openai' }),
      // @ts-expect-error: there is no way to pass a key, only a reference.
      apiKey: 'sk-proj-literal',
    };
    expect(props.workspaceId).toBe('ws');
  });
});
