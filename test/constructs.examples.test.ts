import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { Testing } from 'cdktf';
import { describe, expect, it } from 'vitest';
import { AiConfigStack } from '../examples/typescript/stack.js';
import {
  PYTHON,
  QUIET_JSII,
  requirePythonVenv,
  runCommand,
  synthApp,
  tofuValidate,
} from './support/cdktf.js';
import { REPO } from './support/rigbox-server.js';
import { TofuWorkspace } from './support/tofu.js';

/**
 * The examples: the TypeScript app (as the root cdktf.json runs it), its Python twin built on the
 * jsii-pacmak wheel, and the plain HCL config declare the same Rigbox resources, and each is valid
 * Terraform. Also: constructs/API.md is what jsii-docgen makes of the current API.
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

async function synthPythonExample(): Promise<Json> {
  requirePythonVenv();
  const stacks = await synthApp(PYTHON, ['main.py'], join(REPO, 'examples/python'));
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

  it('the Python example fails synth when it breaks the policy', async () => {
    requirePythonVenv();
    const script = readFileSync(join(REPO, 'examples/python/main.py'), 'utf8').replace(
      'model="gpt-4o"',
      'model="o3"',
    );
    const dir = mkdtempSync(join(tmpdir(), 'rigbox-py-'));
    try {
      const res = await runCommand(PYTHON, ['-c', script], {
        cwd: dir,
        env: { ...QUIET_JSII, CDKTF_OUTDIR: join(dir, 'out') },
      });
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/ByokPolicy: rigbox-ai-config\/ml breaks rule allowedModels: model "o3"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

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

  it('constructs/API.md is what jsii-docgen makes of the current API (run `npm run docgen -w constructs`)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rigbox-docgen-'));
    try {
      const res = await runCommand(
        process.execPath,
        [join(REPO, 'constructs/scripts/docgen.mjs'), join(dir, 'API.md')],
        {
          cwd: join(REPO, 'constructs'),
        },
      );
      expect(res.code, res.stderr).toBe(0);
      expect(readFileSync(join(dir, 'API.md'), 'utf8')).toBe(
        readFileSync(join(REPO, 'constructs/API.md'), 'utf8'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
