/**
 * Synth benchmark, in one run, under cdktf and under cdktn: an app of N RigboxWorkspaceAiConfig
 * (BYOK, Vault reference, model) vs an app of N null_resource (hashicorp/null, the generated
 * provider-null construct of the same core) with a triggers map of the same five values, so both
 * write the same amount of configuration. Each round builds the app and runs App.synth() into a
 * scratch folder (validations, aspects, JSON written), rounds alternate, and the median of each is
 * reported; a third figure adds a ByokPolicy. Each core's ratio is against its own null_resource.
 * Wall time is the figure; the process's CPU time is shown beside it, since on a shared, loaded
 * machine wall time also counts the time other processes had the cores.
 * Target: rigbox <= 1.2x null under each core. Not a test.
 *
 * The cdktf baseline is @cdktf/provider-null from npm. npm has no @cdktn/provider-null; PyPI's
 * cdktn-provider-null wheel carries the same generated package as its jsii bundle, so the cdktn
 * baseline is that bundle, taken from the venv that `npm run build` makes (.tools/cdktn-python)
 * and unpacked into .tools/cdktn-js/node_modules, where it resolves the repo's cdktn.
 *
 * Usage: npm run bench:synth [-- --size 1000 --rounds 9 --core cdktf|cdktn|both]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type * as NullProviderModule from '@cdktf/provider-null/lib/provider/index.js';
import type * as NullResourceModule from '@cdktf/provider-null/lib/resource/index.js';
import type * as Library from '@rigbox/cdktf-constructs';
import type * as CdktfCore from 'cdktf';

const { values } = parseArgs({
  options: { size: { type: 'string' }, rounds: { type: 'string' }, core: { type: 'string' } },
});
const size = Number(values.size ?? 1000);
const rounds = Number(values.rounds ?? 9);
const coreArg = values.core ?? 'both';
if (!['cdktf', 'cdktn', 'both'].includes(coreArg)) throw new Error(`--core must be cdktf, cdktn or both`);

const REPO = join(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);

/** One build of the library with the core it uses and that core's generated null provider. */
interface Flavor {
  name: 'cdktf' | 'cdktn';
  core: typeof CdktfCore;
  lib: typeof Library;
  NullProvider: typeof NullProviderModule.NullProvider;
  Resource: typeof NullResourceModule.Resource;
}

/** @cdktn/provider-null from the jsii bundle in PyPI's cdktn-provider-null (see the header). */
function cdktnProviderNullDir(): string {
  const site = join(REPO, '.tools/cdktn-python/lib');
  const python = existsSync(site) ? readdirSync(site).find((d) => d.startsWith('python')) : undefined;
  const jsiiDir = python && join(site, python, 'site-packages/cdktn_provider_null/_jsii');
  const bundle = jsiiDir && existsSync(jsiiDir) && readdirSync(jsiiDir).find((f) => f.endsWith('.jsii.tgz'));
  if (!jsiiDir || !bundle) {
    throw new Error(
      'cdktn-provider-null is not in .tools/cdktn-python: run `npm run build` (it needs python3)',
    );
  }
  const dir = join(REPO, '.tools/cdktn-js/node_modules/@cdktn/provider-null');
  const version = /@([^@]+)\.jsii\.tgz$/.exec(bundle)?.[1];
  const installed = existsSync(join(dir, 'package.json'))
    ? JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version
    : undefined;
  if (installed !== version) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tar = spawnSync('tar', ['xzf', join(jsiiDir, bundle), '-C', dir, '--strip-components=1']);
    if (tar.status !== 0) throw new Error(`could not unpack ${bundle}: ${tar.stderr}`);
  }
  return dir;
}

function load(name: Flavor['name']): Flavor {
  const entry = require.resolve(`@rigbox/${name}-constructs`);
  const nullDir =
    name === 'cdktf'
      ? join(require.resolve('@cdktf/provider-null/package.json'), '..')
      : cdktnProviderNullDir();
  const flavor: Flavor = {
    name,
    core: createRequire(entry)(name),
    lib: require(entry),
    NullProvider: require(join(nullDir, 'lib/provider/index.js')).NullProvider,
    Resource: require(join(nullDir, 'lib/resource/index.js')).Resource,
  };
  // Each piece must use the very core the others use, or synth fails (or aspects go unseen).
  const nullCore = createRequire(join(nullDir, 'package.json'))(name);
  if (nullCore !== flavor.core) throw new Error(`the ${name} null provider resolves another copy of ${name}`);
  return flavor;
}

type Kind = 'rigbox' | 'null' | 'rigbox+policy';

/** Wall and CPU milliseconds of one build-and-synth. */
function synthOnce({ core, lib, NullProvider, Resource }: Flavor, kind: Kind, n: number): [number, number] {
  const outdir = mkdtempSync(join(tmpdir(), 'rigbox-bench-synth-'));
  try {
    const t = performance.now();
    const cpu = process.cpuUsage();
    const app = new core.App({ outdir });
    const stack = new core.TerraformStack(app, 'bench');
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
      new lib.RigboxProvider(stack, 'rigbox');
      for (let i = 0; i < n; i++) {
        new lib.RigboxWorkspaceAiConfig(stack, `r${i}`, {
          workspaceId: `ws_${i}`,
          mode: lib.AiMode.BYOK,
          aiProvider: lib.AiProvider.OPENAI,
          model: 'gpt-4o',
          apiKeySource: lib.ApiKeySource.fromVault({
            mount: 'secret',
            path: `teams/t${i}/openai`,
            field: 'api_key',
          }),
        });
      }
      if (kind === 'rigbox+policy') {
        core.Aspects.of(app).add(
          new lib.ByokPolicy({
            allowedModes: [lib.AiMode.BYOK],
            allowedAiProviders: [lib.AiProvider.OPENAI],
            allowedModels: ['gpt-4o'],
            allowedKeySourceKinds: [lib.KeySourceKind.VAULT],
            allowedVaultPathPrefixes: ['secret/teams'],
          }),
        );
      }
    }
    app.synth();
    const used = process.cpuUsage(cpu);
    return [performance.now() - t, (used.user + used.system) / 1000];
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
const flavors = (coreArg === 'both' ? (['cdktf', 'cdktn'] as const) : [coreArg as Flavor['name']]).map(load);
const runs = flavors.flatMap((flavor) =>
  (['null', 'rigbox', 'rigbox+policy'] as const).map((kind) => ({
    flavor,
    kind,
    wall: [] as number[],
    cpu: [] as number[],
  })),
);

// Warm up the JIT and the module caches with a full-size app of each kind.
for (const run of runs) synthOnce(run.flavor, run.kind, size);

for (let r = 0; r < rounds; r++) {
  // Alternate the order, so that no kind always runs first.
  for (const run of r % 2 === 0 ? runs : [...runs].reverse()) {
    gc();
    const [wall, cpu] = synthOnce(run.flavor, run.kind, size);
    run.wall.push(wall);
    run.cpu.push(cpu);
  }
}

console.log(`synth of ${size} resources, median of ${rounds} rounds (construct + App.synth), wall (cpu):`);
let missed = false;
for (const flavor of flavors) {
  const of = (kind: Kind) => runs.find((r) => r.flavor === flavor && r.kind === kind)!;
  const wall = (kind: Kind) => median(of(kind).wall);
  const cpu = (kind: Kind) => median(of(kind).cpu);
  const line = (label: string, kind: Kind, note = '') =>
    console.log(
      `  ${label.padEnd(32)}${wall(kind).toFixed(0).padStart(6)} ms (${cpu(kind).toFixed(0).padStart(5)} ms)` +
        (kind === 'null'
          ? ''
          : `   ratio ${(wall(kind) / wall('null')).toFixed(2)}x (cpu ${(cpu(kind) / cpu('null')).toFixed(2)}x)${note}`),
    );
  missed ||= wall('rigbox') / wall('null') > 1.2;
  console.log(`${flavor.name}:`);
  line('null_resource', 'null');
  line('RigboxWorkspaceAiConfig', 'rigbox', ' (target <= 1.2x)');
  line('RigboxWorkspaceAiConfig+policy', 'rigbox+policy');
}
if (missed) process.exitCode = 1;
