/**
 * Synth benchmark, in one run: an app of N RigboxWorkspaceAiConfig (BYOK, Vault reference, model)
 * vs an app of N null_resource (hashicorp/null, the generated @cdktf/provider-null construct) with
 * a triggers map of the same five values, so both write the same amount of configuration.
 * Each round builds the app and runs App.synth() into a scratch folder (validations, aspects, JSON
 * written), rounds alternate, and the median of each is reported; a third figure adds a ByokPolicy.
 * Target: rigbox <= 1.2x null. Not a test.
 * Usage: npm run bench:synth [-- --size 1000 --rounds 9]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NullProvider } from '@cdktf/provider-null/lib/provider/index.js';
import { Resource } from '@cdktf/provider-null/lib/resource/index.js';
import {
  AiMode,
  AiProvider,
  ApiKeySource,
  ByokPolicy,
  KeySourceKind,
  RigboxProvider,
  RigboxWorkspaceAiConfig,
} from '@rigbox/cdktf-constructs';
import { App, Aspects, TerraformStack } from 'cdktf';

const { values } = parseArgs({ options: { size: { type: 'string' }, rounds: { type: 'string' } } });
const size = Number(values.size ?? 1000);
const rounds = Number(values.rounds ?? 9);

type Kind = 'rigbox' | 'null' | 'rigbox+policy';

function synthOnce(kind: Kind, n: number): number {
  const outdir = mkdtempSync(join(tmpdir(), 'rigbox-bench-synth-'));
  try {
    const t = performance.now();
    const app = new App({ outdir });
    const stack = new TerraformStack(app, 'bench');
    if (kind === 'null') {
      new NullProvider(stack, 'null');
      for (let i = 0; i < n; i++) {
        new Resource(stack, `r${i}`, {
          triggers: {
            workspace_id: `ws_${i}`,
            mode: 'byok',
            ai_provider: 'openai',
            model: 'gpt-4o',
            key: `secret/teams/t${i}/openai#api_key`,
          },
        });
      }
    } else {
      new RigboxProvider(stack, 'rigbox');
      for (let i = 0; i < n; i++) {
        new RigboxWorkspaceAiConfig(stack, `r${i}`, {
          workspaceId: `ws_${i}`,
          mode: AiMode.BYOK,
          aiProvider: AiProvider.OPENAI,
          model: 'gpt-4o',
          apiKeySource: ApiKeySource.fromVault({
            mount: 'secret',
            path: `teams/t${i}/openai`,
            field: 'api_key',
          }),
        });
      }
      if (kind === 'rigbox+policy') {
        Aspects.of(app).add(
          new ByokPolicy({
            allowedModes: [AiMode.BYOK],
            allowedAiProviders: [AiProvider.OPENAI],
            allowedModels: ['gpt-4o'],
            allowedKeySourceKinds: [KeySourceKind.VAULT],
            allowedVaultPathPrefixes: ['secret/teams'],
          }),
        );
      }
    }
    app.synth();
    return performance.now() - t;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

// Started with --expose-gc (npm run bench:synth): each round starts from a collected heap, so no
// kind pays for the garbage of the one before it.
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const kinds: Kind[] = ['null', 'rigbox', 'rigbox+policy'];

// Warm up the JIT and the module caches with a full-size app of each kind.
for (const kind of kinds) synthOnce(kind, size);

const times: Record<Kind, number[]> = { null: [], rigbox: [], 'rigbox+policy': [] };
for (let r = 0; r < rounds; r++) {
  // Alternate the order, so that neither kind always runs first.
  for (const kind of r % 2 === 0 ? kinds : [...kinds].reverse()) {
    gc();
    times[kind].push(synthOnce(kind, size));
  }
}

const nullMs = median(times.null);
const rigboxMs = median(times.rigbox);
const policyMs = median(times['rigbox+policy']);
const ratio = rigboxMs / nullMs;
console.log(`synth of ${size} resources, median of ${rounds} rounds (construct + App.synth):`);
console.log(`  null_resource                   ${nullMs.toFixed(0).padStart(6)} ms`);
console.log(
  `  RigboxWorkspaceAiConfig         ${rigboxMs.toFixed(0).padStart(6)} ms   ratio ${ratio.toFixed(2)}x (target <= 1.2x)`,
);
console.log(
  `  RigboxWorkspaceAiConfig+policy  ${policyMs.toFixed(0).padStart(6)} ms   ratio ${(policyMs / nullMs).toFixed(2)}x`,
);
if (ratio > 1.2) process.exitCode = 1;
