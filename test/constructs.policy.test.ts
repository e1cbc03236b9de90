import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ByokPolicyProps, RigboxWorkspaceAiConfigProps } from '@rigbox/cdktf-constructs';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { CdktfProject, runCommand, TSX_LOADER } from './support/cdktf.js';
import { byokFromVault as byok, FLAVORS } from './support/constructs.js';
import { REPO } from './support/rigbox-server.js';

/**
 * ByokPolicy: allowed and refused cases for every rule. A violation is an error annotation that
 * names the construct path and the rule, so synth fails (through App.synth and the real cdktf CLI).
 * For both builds of the library (cdktf and cdktn).
 */

describe.each(FLAVORS)('$packageName', (flavor) => {
  const { AnnotationMetadataEntryType, App, Aspects, TerraformStack, TerraformVariable, Testing } =
    flavor.core;
  const {
    AiMode,
    AiProvider,
    ApiKeySource,
    ByokPolicy,
    KeySourceKind,
    RigboxAiDefaults,
    RigboxProvider,
    RigboxWorkspaceAiConfig,
  } = flavor.lib;
  const byokFromVault = (overrides: Parameters<typeof byok>[0] = {}) => byok(overrides, flavor);

  const policy: ByokPolicyProps = {
    allowedModes: [AiMode.BYOK],
    allowedAiProviders: [AiProvider.OPENAI, AiProvider.ANTHROPIC],
    allowedModels: ['gpt-4o', 'claude-sonnet-4-20250514'],
    allowedKeySourceKinds: [KeySourceKind.VAULT],
    allowedVaultPathPrefixes: ['secret/teams/'],
    allowedSsmNamePrefixes: ['/rigbox/prod'],
  };

  function errorsOf(scope: IConstruct): string[] {
    return scope.node
      .findAll()
      .flatMap((c) => c.node.metadata)
      .filter((m) => m.type === AnnotationMetadataEntryType.ERROR)
      .map((m) => String(m.data));
  }

  /** Runs the policy over one workspace config (as synth does) and returns the error annotations. */
  function violations(props: RigboxWorkspaceAiConfigProps, rules: ByokPolicyProps = policy): string[] {
    const stack = new TerraformStack(Testing.app(), 'stack');
    new RigboxProvider(stack, 'rigbox');
    new RigboxWorkspaceAiConfig(stack, 'ml', props);
    Aspects.of(stack).add(new ByokPolicy(rules));
    Testing.synth(stack);
    return errorsOf(stack);
  }

  describe('ByokPolicy', () => {
    it('allows a config that meets every rule, and the synth goes through', () => {
      expect(violations(byokFromVault())).toEqual([]);
      const stack = new TerraformStack(Testing.app(), 'stack');
      new RigboxProvider(stack, 'rigbox');
      new RigboxWorkspaceAiConfig(stack, 'ml', byokFromVault());
      Aspects.of(stack).add(new ByokPolicy(policy));
      expect(() => Testing.fullSynth(stack)).not.toThrow();
    });

    it('allows anything when no rule is set, and ignores other constructs', () => {
      const stack = new TerraformStack(Testing.app(), 'stack');
      new RigboxProvider(stack, 'rigbox');
      new RigboxWorkspaceAiConfig(stack, 'any', {
        workspaceId: 'ws',
        mode: AiMode.BYOK,
        aiProvider: AiProvider.GROQ,
        apiKeySource: ApiKeySource.fromSsm({ name: '/anywhere' }),
      });
      Aspects.of(stack).add(new ByokPolicy());
      Testing.synth(stack);
      expect(errorsOf(stack)).toEqual([]);
    });

    const refused: [string, RigboxWorkspaceAiConfigProps, RegExp][] = [
      [
        'a mode',
        { workspaceId: 'ws', mode: AiMode.MANAGED, aiProvider: AiProvider.OPENAI, model: 'gpt-4o' },
        /^ByokPolicy: stack\/ml breaks rule allowedModes: mode "managed" is not allowed \(allowed: "byok"\)$/,
      ],
      [
        'an AI provider',
        byokFromVault({ aiProvider: AiProvider.GOOGLE }),
        /stack\/ml breaks rule allowedAiProviders: AI provider "google" is not allowed \(allowed: "openai", "anthropic"\)/,
      ],
      [
        'a custom AI provider',
        byokFromVault({ aiProvider: AiProvider.custom('perplexity') }),
        /allowedAiProviders: AI provider "perplexity"/,
      ],
      [
        'a model',
        byokFromVault({ model: 'o3' }),
        /stack\/ml breaks rule allowedModels: model "o3" is not allowed/,
      ],
      ['no model at all', byokFromVault({ model: undefined }), /allowedModels: no model is set/],
      [
        'a key source kind',
        byokFromVault({ apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/prod/openai' }) }),
        /stack\/ml breaks rule allowedKeySourceKinds: key source kind "ssm" is not allowed \(allowed: "vault"\)/,
      ],
      [
        'a Vault path outside the prefixes',
        byokFromVault({
          apiKeySource: ApiKeySource.fromVault({ mount: 'secret', path: 'shared/openai', field: 'k' }),
        }),
        /stack\/ml breaks rule allowedVaultPathPrefixes: Vault path "secret\/shared\/openai" is outside/,
      ],
      [
        'a Vault path that only shares the prefix text (segments are whole)',
        byokFromVault({
          apiKeySource: ApiKeySource.fromVault({ mount: 'secret', path: 'teams-old/x', field: 'k' }),
        }),
        /allowedVaultPathPrefixes: Vault path "secret\/teams-old\/x"/,
      ],
      [
        'a Vault path in another mount',
        byokFromVault({
          apiKeySource: ApiKeySource.fromVault({ mount: 'kv', path: 'teams/ml', field: 'k' }),
        }),
        /allowedVaultPathPrefixes: Vault path "kv\/teams\/ml"/,
      ],
    ];
    for (const [what, props, message] of refused) {
      it(`refuses ${what}, naming the construct path and the rule`, () => {
        const errors = violations(props);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toMatch(message);
      });
    }

    it('matches SSM prefixes by whole segments and ARNs as written', () => {
      const ssm = (name: string) =>
        violations(byokFromVault({ apiKeySource: ApiKeySource.fromSsm({ name }) }), {
          allowedSsmNamePrefixes: ['/rigbox/prod'],
        });
      expect(ssm('/rigbox/prod/openai')).toEqual([]);
      expect(ssm('/rigbox/prod')).toEqual([]);
      expect(ssm('/rigbox/production/openai')[0]).toMatch(
        /allowedSsmNamePrefixes: SSM parameter "\/rigbox\/production\/openai"/,
      );
      expect(ssm('arn:aws:ssm:eu-west-1:123456789012:parameter/rigbox/prod/openai')[0]).toMatch(
        /allowedSsmNamePrefixes/,
      );
    });

    it('accepts a Vault path given with extra slashes that is inside the prefix', () => {
      const source = ApiKeySource.fromVault({ mount: '/secret/', path: '/teams/ml/openai/', field: 'k' });
      expect(violations(byokFromVault({ apiKeySource: source }))).toEqual([]);
    });

    it('reports every broken rule of a config', () => {
      const errors = violations({
        workspaceId: 'ws',
        mode: AiMode.BYOK,
        aiProvider: AiProvider.GROQ,
        model: 'llama-3',
        apiKeySource: ApiKeySource.fromSsm({ name: '/other/groq' }),
      });
      expect(errors.map((e) => /breaks rule (\w+)/.exec(e)?.[1])).toEqual([
        'allowedAiProviders',
        'allowedModels',
        'allowedKeySourceKinds',
        'allowedSsmNamePrefixes',
      ]);
    });

    it('fails closed on values only known at plan time', () => {
      const stack = new TerraformStack(Testing.app(), 'stack');
      new RigboxProvider(stack, 'rigbox');
      const v = (name: string) => new TerraformVariable(stack, name, { type: 'string' }).stringValue;
      new RigboxWorkspaceAiConfig(stack, 'ml', {
        workspaceId: v('ws'),
        mode: AiMode.BYOK,
        aiProvider: AiProvider.custom(v('ai_provider')),
        model: v('model'),
        apiKeySource: ApiKeySource.fromVault({ mount: 'secret', path: v('path'), field: 'k' }),
      });
      Aspects.of(stack).add(new ByokPolicy(policy));
      Testing.synth(stack);
      const errors = errorsOf(stack);
      expect(errors).toHaveLength(3);
      for (const e of errors) expect(e).toMatch(/is not known at synth time .* so it cannot be checked/);
    });

    it('covers the defaults as well as workspace configs', () => {
      const stack = new TerraformStack(Testing.app(), 'stack');
      new RigboxProvider(stack, 'rigbox');
      new RigboxAiDefaults(stack, 'defaults', {
        mode: AiMode.BYOK,
        aiProvider: AiProvider.ANTHROPIC,
        model: 'claude-sonnet-4-20250514',
        apiKeySource: ApiKeySource.fromSsm({ name: '/rigbox/prod/anthropic' }),
      });
      Aspects.of(stack).add(new ByokPolicy(policy));
      Testing.synth(stack);
      expect(errorsOf(stack)).toEqual([
        'ByokPolicy: stack/defaults breaks rule allowedKeySourceKinds: key source kind "ssm" is not allowed (allowed: "vault")',
      ]);
    });

    it('fails App.synth when added to the App (cdktf itself applies aspects per stack only)', () => {
      const outdir = mkdtempSync(join(tmpdir(), 'rigbox-policy-'));
      try {
        const app = new App({ outdir });
        for (const team of ['ml', 'web']) {
          const stack = new TerraformStack(app, team);
          new RigboxProvider(stack, 'rigbox');
          new RigboxWorkspaceAiConfig(
            stack,
            'ai',
            byokFromVault({ model: team === 'web' ? 'o3' : 'gpt-4o' }),
          );
        }
        const rule = new ByokPolicy(policy);
        Aspects.of(app).add(rule);
        // Added on a stack as well: still reported once.
        Aspects.of(app.node.findChild('web')).add(rule);
        expect(() => app.synth()).toThrow(
          /\[web\/ai\] ByokPolicy: web\/ai breaks rule allowedModels: model "o3" is not allowed/,
        );
        expect(errorsOf(app)).toHaveLength(1);
      } finally {
        rmSync(outdir, { recursive: true, force: true });
      }
    });

    // cdktn-cli needs Node >= 22.19 and this project runs on Node 20: for cdktn the app is run as its
    // CLI would run it (the cdktf.json `app` command, CDKTF_OUTDIR set).
    it(`makes the real \`${flavor.name} synth\` fail with the path and the rule`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rigbox-policy-app-'));
      const app = join(dir, 'main.ts');
      writeFileSync(
        app,
        `import { App, Aspects, TerraformStack } from '${flavor.name}';
import { AiMode, AiProvider, ApiKeySource, ByokPolicy, RigboxProvider, RigboxWorkspaceAiConfig } from '${flavor.packageName}';
const app = new App();
const stack = new TerraformStack(app, 'ai');
new RigboxProvider(stack, 'rigbox');
new RigboxWorkspaceAiConfig(stack, 'ml', {
  workspaceId: 'ws', mode: AiMode.BYOK, aiProvider: AiProvider.GROQ,
  apiKeySource: ApiKeySource.fromVault({ mount: 'secret', path: 'teams/ml/groq', field: 'api_key' }),
});
Aspects.of(app).add(new ByokPolicy({ allowedAiProviders: [AiProvider.OPENAI] }));
app.synth();
`,
      );
      const breaks = /ByokPolicy: ai\/ml breaks rule allowedAiProviders: AI provider "groq" is not allowed/;
      // Resolved from the repo: the app lives outside it.
      const NODE_PATH = join(REPO, 'node_modules');
      if (flavor.name === 'cdktn') {
        try {
          const res = await runCommand(process.execPath, ['--import', TSX_LOADER, app], {
            cwd: dir,
            env: { NODE_PATH, CDKTF_OUTDIR: join(dir, 'cdktf.out') },
          });
          expect(res.code).not.toBe(0);
          expect(res.stdout + res.stderr).toMatch(breaks);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        return;
      }
      const project = new CdktfProject(
        {
          language: 'typescript',
          app: `${process.execPath} --import ${TSX_LOADER} ${app}`,
          sendCrashReports: 'false',
          projectId: 'policy-test',
        },
        { NODE_PATH },
      );
      try {
        const res = await project.run(['synth']);
        expect(res.code).not.toBe(0);
        expect(res.stdout + res.stderr).toMatch(breaks);
      } finally {
        project.dispose();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  });
});
