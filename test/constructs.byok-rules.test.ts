import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ByokRules } from '@rigbox/cdktf-constructs';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { requirePythonVenv, runCommand, synthApp, tofuValidate } from './support/cdktf.js';
import { byokFromVault as byok, FLAVORS } from './support/constructs.js';

/**
 * One BYOK rule set, both enforcement points (issue 18): `ByokPolicy.fromRules(rules)` fails synth,
 * `new RigboxByokPolicy(scope, id, { rules })` synthesizes the account's server-side policy
 * (rigbox_byok_policy), from the same object, in TypeScript and in Python. For both builds of the
 * library (cdktf and cdktn).
 */

describe.each(FLAVORS)('$packageName', (flavor) => {
  const { AnnotationMetadataEntryType, TerraformStack, Testing } = flavor.core;
  const {
    AiMode,
    AiProvider,
    ByokEnforcement,
    ByokPolicy,
    ByokRuleSet,
    KeySourceKind,
    RigboxByokPolicy,
    RigboxProvider,
    RigboxWorkspaceAiConfig,
  } = flavor.lib;

  const rules: ByokRules = {
    allowedModes: [AiMode.BYOK],
    allowedAiProviders: [AiProvider.OPENAI, AiProvider.ANTHROPIC],
    allowedModelsByAiProvider: { openai: ['gpt-4o', 'gpt-4o-mini'] },
    maxKeyAgeDays: 90,
    allowedKeySourceKinds: [KeySourceKind.VAULT],
    allowedVaultPathPrefixes: ['secret/teams'],
  };

  const annotations = (scope: IConstruct, type: string) =>
    scope.node
      .findAll()
      .flatMap((c) => c.node.metadata)
      .filter((m) => m.type === type)
      .map((m) => String(m.data));

  /** A stack with the server-side policy and one workspace config checked by the synth-time one. */
  function stackWith(model: string, r: ByokRules = rules) {
    // One rule set object, both enforcement points.
    const ruleSet = new ByokRuleSet(r);
    const stack = new TerraformStack(Testing.app(), 'stack');
    new RigboxProvider(stack, 'rigbox');
    new RigboxByokPolicy(stack, 'policy', { rules: ruleSet });
    new RigboxWorkspaceAiConfig(stack, 'ml', byok({ model }, flavor));
    flavor.core.Aspects.of(stack).add(ByokPolicy.fromRules(ruleSet));
    const out = Testing.synth(stack);
    return { stack, out };
  }

  it('builds the server-side policy from the rules: the rules the server sees, nothing synth-only', async () => {
    const { stack, out } = stackWith('gpt-4o');
    expect(annotations(stack, AnnotationMetadataEntryType.ERROR)).toEqual([]);
    const policy = JSON.parse(out).resource.rigbox_byok_policy.policy;
    expect(policy).toEqual({
      enforcement: 'enforce',
      allowed_modes: ['byok'],
      allowed_providers: ['openai', 'anthropic'],
      allowed_models: { openai: ['gpt-4o', 'gpt-4o-mini'] },
      max_key_age_days: 90,
    });
    const res = await tofuValidate(out);
    expect(res.code, res.stdout + res.stderr).toBe(0);
  });

  it('the same rules fail synth for a config that breaks them', () => {
    const { stack } = stackWith('gpt-3.5-turbo');
    expect(annotations(stack, AnnotationMetadataEntryType.ERROR)).toEqual([
      'ByokPolicy: stack/ml breaks rule allowedModelsByAiProvider: model "gpt-3.5-turbo" is not allowed for "openai" (allowed: "gpt-4o", "gpt-4o-mini")',
    ]);
  });

  it('report enforcement: the server policy reports, synth warns and goes through', () => {
    const { stack, out } = stackWith('gpt-3.5-turbo', { ...rules, enforcement: ByokEnforcement.REPORT });
    expect(annotations(stack, AnnotationMetadataEntryType.ERROR)).toEqual([]);
    expect(annotations(stack, AnnotationMetadataEntryType.WARN)).toEqual([
      expect.stringContaining('breaks rule allowedModelsByAiProvider'),
    ]);
    expect(JSON.parse(out).resource.rigbox_byok_policy.policy.enforcement).toBe('report');
  });

  it('a model list for any provider becomes one list per allowed provider on the server', () => {
    const stack = new TerraformStack(Testing.app(), 'stack');
    new RigboxByokPolicy(stack, 'p', {
      rules: new ByokRuleSet({
        allowedAiProviders: [AiProvider.OPENAI, AiProvider.GOOGLE],
        allowedModels: ['gpt-4o', 'google/gemini-2.5-pro'],
        allowedModelsByAiProvider: { openai: ['gpt-4o', 'o3'] },
      }),
    });
    const policy = JSON.parse(Testing.synth(stack)).resource.rigbox_byok_policy.p;
    expect(policy.allowed_models).toEqual({
      openai: ['gpt-4o'],
      google: ['gpt-4o', 'google/gemini-2.5-pro'],
    });
  });

  it('renders as HCL too, and that HCL is valid', async () => {
    const stack = new TerraformStack(Testing.app(), 'stack');
    new RigboxProvider(stack, 'rigbox');
    new RigboxByokPolicy(stack, 'p', { rules: new ByokRuleSet(rules) });
    const hcl: string = Testing.synthHcl(stack);
    expect(hcl).toMatch(/allowed_providers\s*=\s*\[\s*"openai",\s*"anthropic"\s*\]/);
    expect(hcl).toMatch(/max_key_age_days\s*=\s*90/);
    expect(hcl).toMatch(/allowed_models\s*=\s*{\s*openai\s*=\s*\[\s*"gpt-4o",\s*"gpt-4o-mini",?\s*\]/);
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

  it.each([
    ['an empty mode list', { allowedModes: [] }, /allowedModes is empty, so every config would be refused/],
    [
      'a negative key age',
      { maxKeyAgeDays: -1 },
      /maxKeyAgeDays must be a whole number of days from 1 to 3650, not -1/,
    ],
    [
      'an absurd key age',
      { maxKeyAgeDays: 100_000 },
      /maxKeyAgeDays must be a whole number of days from 1 to 3650, not 100000/,
    ],
    [
      'a model list for a provider not allowed',
      { allowedAiProviders: [AiProvider.OPENAI], allowedModelsByAiProvider: { groq: ['llama'] } },
      /allowedModelsByAiProvider lists "groq", which allowedAiProviders does not allow/,
    ],
  ])('refuses %s at once, naming the construct', (_label, bad, message) => {
    const stack = new TerraformStack(Testing.app(), 'stack');
    expect(() => new RigboxByokPolicy(stack, 'p', { rules: new ByokRuleSet(bad as ByokRules) })).toThrow(
      new RegExp(`rigbox_byok_policy "stack/p": ${message.source}`),
    );
  });

  it('Python: one rule set, both enforcement points', async () => {
    const python = requirePythonVenv(flavor.pythonVenv);
    const dir = mkdtempSync(join(tmpdir(), 'rigbox-rules-py-'));
    try {
      writeFileSync(
        join(dir, 'main.py'),
        `from ${flavor.name} import App, Aspects, TerraformStack
from ${flavor.pythonModule} import (
    AiMode, AiProvider, ApiKeySource, ByokPolicy, ByokRuleSet, RigboxByokPolicy, RigboxProvider,
    RigboxWorkspaceAiConfig,
)
import sys

rules = ByokRuleSet(
    allowed_ai_providers=[AiProvider.OPENAI],
    allowed_models_by_ai_provider={"openai": ["gpt-4o"]},
    max_key_age_days=30,
)
app = App()
stack = TerraformStack(app, "ai")
RigboxProvider(stack, "rigbox")
RigboxByokPolicy(stack, "policy", rules=rules)
RigboxWorkspaceAiConfig(stack, "ml", workspace_id="ws_1", mode=AiMode.BYOK, ai_provider=AiProvider.OPENAI,
    model=sys.argv[1], api_key_source=ApiKeySource.from_vault(mount="secret", path="teams/ml", field="k"))
Aspects.of(stack).add(ByokPolicy.from_rules(rules))
app.synth()
`,
      );
      const ok = await synthApp(python, ['main.py', 'gpt-4o'], dir);
      expect(ok.ai!.resource).toMatchObject({
        rigbox_byok_policy: {
          policy: {
            enforcement: 'enforce',
            allowed_providers: ['openai'],
            allowed_models: { openai: ['gpt-4o'] },
            max_key_age_days: 30,
          },
        },
      });
      const outdir = join(dir, 'out');
      const bad = await runCommand(python, ['main.py', 'o3'], { cwd: dir, env: { CDKTF_OUTDIR: outdir } });
      expect(bad.code).not.toBe(0);
      expect(bad.stdout + bad.stderr).toMatch(
        /ByokPolicy: ai\/ml breaks rule allowedModelsByAiProvider: model "o3" is not allowed for "openai"/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
