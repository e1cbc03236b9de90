import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { Testing } from 'cdktf';
import { Testing as CdktnTesting } from 'cdktn';
import { describe, expect, it } from 'vitest';
import { AiConfigStack } from '../examples/typescript/stack.js';
import { AiConfigStack as CdktnAiConfigStack } from '../examples/typescript-cdktn/stack.js';
import { QUIET_JSII, requirePythonVenv, runCommand, synthApp, tofuValidate } from './support/cdktf.js';
import { CDKTF, CDKTN, type Flavor } from './support/constructs.js';
import { REPO } from './support/rigbox-server.js';
import { TofuWorkspace } from './support/tofu.js';

/**
 * The examples: the TypeScript app (as the root cdktf.json runs it), its Python twin built on the
 * jsii-pacmak wheel, and the plain HCL config declare the same Rigbox resources, and each is valid
 * Terraform. The cdktn twins (examples/typescript-cdktn, examples/python-cdktn) declare them too.
 * Also: each package's API.md is what jsii-docgen makes of the current API.
 */

// biome-ignore lint/suspicious/noExplicitAny: tests walk parsed Terraform JSON by field name.
type Json = Record<string, any>;
const STACK = 'rigbox-ai-config';

/** The root cdktf.json's `app` command, run from the repo root as `cdktf synth` would. */
async function synthTypeScriptExample(): Promise<Json> {
  const app = String(JSON.parse(readFileSync(join(REPO, 'cdktf.json'), 'utf8')).app).split(' ');
  const [cmd, ...args] = app;
  const stacks = await synthApp(cmd === 'node' ? process.execPath : String(cmd), args, REPO);
  return stacks[STACK]!;
}

async function synthPythonExample(flavor: Flavor = CDKTF): Promise<Json> {
  const python = requirePythonVenv(flavor.pythonVenv);
  const folder = flavor === CDKTF ? 'examples/python' : 'examples/python-cdktn';
  const stacks = await synthApp(python, ['main.py'], join(REPO, folder));
  return stacks[STACK]!;
}

/** examples/typescript-cdktn as its cdktf.json runs it, from its folder (cdktn keeps cdktf.json). */
async function synthCdktnTypeScriptExample(): Promise<Json> {
  const dir = join(REPO, 'examples/typescript-cdktn');
  const [cmd, ...args] = String(JSON.parse(readFileSync(join(dir, 'cdktf.json'), 'utf8')).app).split(' ');
  const stacks = await synthApp(cmd === 'node' ? process.execPath : String(cmd), args, dir);
  return stacks[STACK]!;
}

/** The config without the metadata that names where and how it was made. */
function portable(tf: Json): Json {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => k !== '//')
          .map(([k, x]) => [k, strip(x)]),
      );
    }
    return v;
  };
  const { backend: _backend, ...terraform } = tf.terraform;
  return strip({ ...tf, terraform }) as Json;
}

const rigboxResources = (tf: Json) =>
  Object.fromEntries(Object.entries(tf.resource as Json).filter(([type]) => type.startsWith('rigbox_')));

describe('examples', () => {
  it('the TypeScript example: synth snapshot of its stack', async () => {
    const stack = new AiConfigStack(Testing.app(), STACK);
    await expect(Testing.synth(stack)).toMatchFileSnapshot(
      './__snapshots__/constructs/example-typescript.json',
    );
  });

  it('the TypeScript example (root cdktf.json) synthesizes valid Terraform with the policy applied', async () => {
    const tf = await synthTypeScriptExample();
    expect(Object.keys(tf.resource.rigbox_workspace_ai_config)).toEqual(['ml', 'research', 'support']);
    expect(tf.resource.null_resource.restart_ml_agents.triggers.api_key_fingerprint).toBe(
      '${rigbox_workspace_ai_config.ml.api_key_fingerprint}',
    );
    const res = await tofuValidate(JSON.stringify(portable(tf)));
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  });

  it('the Python example (jsii-pacmak wheel in a venv) synthesizes the same configuration', async () => {
    const [ts, py] = await Promise.all([synthTypeScriptExample(), synthPythonExample()]);
    expect(rigboxResources(portable(py))).toEqual(rigboxResources(portable(ts)));
    expect(Object.keys(rigboxResources(ts))).toEqual(['rigbox_ai_defaults', 'rigbox_workspace_ai_config']);
    // And the rest too: providers, variables, the null_resource and the outputs.
    expect(portable(py)).toEqual(portable(ts));
  });

  for (const flavor of [CDKTF, CDKTN]) {
    const folder = flavor === CDKTF ? 'examples/python' : 'examples/python-cdktn';
    it(`the Python example (${folder}) fails synth when it breaks the policy`, async () => {
      const python = requirePythonVenv(flavor.pythonVenv);
      const script = readFileSync(join(REPO, folder, 'main.py'), 'utf8').replace(
        'model="gpt-4o"',
        'model="o3"',
      );
      expect(script).toContain('model="o3"');
      const dir = mkdtempSync(join(tmpdir(), 'rigbox-py-'));
      try {
        const res = await runCommand(python, ['-c', script], {
          cwd: dir,
          env: { ...QUIET_JSII, CDKTF_OUTDIR: join(dir, 'out') },
        });
        expect(res.code).not.toBe(0);
        expect(res.stderr).toMatch(/ByokPolicy: rigbox-ai-config\/ml breaks rule allowedModels: model "o3"/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('the HCL example is valid Terraform and declares the same Rigbox resources', async () => {
    const hcl = readFileSync(join(REPO, 'examples/hcl/main.tf'), 'utf8');
    const tofu = new TofuWorkspace();
    try {
      tofu.write(hcl);
      expect((await tofu.run(['init', '-no-color', '-backend=false'])).code).toBe(0);
      const res = await tofu.run(['validate', '-no-color']);
      expect(res.code, res.stdout + res.stderr).toBe(0);
    } finally {
      tofu.dispose();
    }
    // HCL as JSON has a list for every block; Terraform JSON takes one object for a single block.
    const single = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.length === 1 && typeof v[0] === 'object' ? single(v[0]) : v.map(single);
      if (v && typeof v === 'object')
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, single(x)]));
      return v;
    };
    const fromHcl = single((await parseHcl('main.tf', hcl)).resource) as Json;
    expect(rigboxResources({ resource: fromHcl })).toEqual(
      rigboxResources(portable(await synthTypeScriptExample())),
    );
  });

  for (const flavor of [CDKTF, CDKTN]) {
    const apiMd = flavor === CDKTF ? 'constructs/API.md' : 'constructs/cdktn/API.md';
    it(`${apiMd} is what jsii-docgen makes of the current API (run \`npm run docgen -w ${flavor.packageName}\`)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rigbox-docgen-'));
      try {
        const res = await runCommand(
          process.execPath,
          [join(REPO, 'constructs/scripts/docgen.mjs'), flavor.name, join(dir, 'API.md')],
          { cwd: join(REPO, 'constructs') },
        );
        expect(res.code, res.stderr).toBe(0);
        expect(readFileSync(join(dir, 'API.md'), 'utf8')).toBe(readFileSync(join(REPO, apiMd), 'utf8'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('cdktn examples', () => {
  /** What the cdktf examples hold besides their null_resource, which the cdktn TypeScript twin lacks. */
  const withoutNull = (tf: Json): Json => {
    const { null_resource: _null, ...resource } = tf.resource;
    const { null: _provider, ...provider } = tf.provider;
    const { null: _required, ...required } = tf.terraform.required_providers;
    return { ...tf, resource, provider, terraform: { ...tf.terraform, required_providers: required } };
  };

  it('the TypeScript example: synth snapshot of its stack', async () => {
    const stack = new CdktnAiConfigStack(CdktnTesting.app(), STACK);
    await expect(CdktnTesting.synth(stack)).toMatchFileSnapshot(
      './__snapshots__/constructs-cdktn/example-typescript.json',
    );
  });

  it('the TypeScript example (its cdktf.json) synthesizes valid Terraform, the same as the cdktf example less null', async () => {
    const tf = await synthCdktnTypeScriptExample();
    expect(Object.keys(tf.resource.rigbox_workspace_ai_config)).toEqual(['ml', 'research', 'support']);
    expect(portable(tf)).toEqual(withoutNull(portable(await synthTypeScriptExample())));
    const res = await tofuValidate(JSON.stringify(portable(tf)));
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  });

  it('the Python example (cdktn wheel, cdktn-provider-null from PyPI) synthesizes the same configuration plus its null_resource', async () => {
    const [ts, py] = await Promise.all([synthCdktnTypeScriptExample(), synthPythonExample(CDKTN)]);
    expect(withoutNull(portable(py))).toEqual(portable(ts));
    expect(py.resource.null_resource.restart_ml_agents.triggers).toEqual({
      workspace_id: '${rigbox_workspace_ai_config.ml.workspace_id}',
      api_key_fingerprint: '${rigbox_workspace_ai_config.ml.api_key_fingerprint}',
    });
    expect(py.terraform.required_providers.null.source).toBe('hashicorp/null');
    // And the Python twins of both builds write the same Terraform but for the null provider's version.
    const cdktfPy = portable(await synthPythonExample(CDKTF));
    expect(withoutNull(cdktfPy)).toEqual(withoutNull(portable(py)));
    expect(cdktfPy.resource.null_resource).toEqual(portable(py).resource.null_resource);
  });
});
