import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoEngine, startMoto } from './engines/moto.js';
import { startVault, type VaultEngine } from './engines/vault.js';
import { apiClient } from './support/api.js';
import { engineEnv } from './support/engine-env.js';
import { canaryKey, folderBytes } from './support/harness.js';
import {
  EXAMPLE_CONFIGS,
  EXAMPLE_IMPORTS,
  EXAMPLES_DIR,
  MIRROR,
  PLATFORM,
  providerKind,
} from './support/provider-build.js';
import { RigboxServer } from './support/rigbox-server.js';
import { ENGINES, TofuWorkspace } from './support/tofu.js';

/**
 * provider/examples, the configurations the registry docs show, as a user runs them: locked with
 * `providers lock` against the packed mirror, then init, apply, import (the import.sh commands),
 * a plan that must be empty, and destroy, on OpenTofu and on HashiCorp Terraform, with no `node`
 * on the PATH: the provider is the single executable. The keys come from a real Vault, moto's SSM
 * and a write-only variable; none may reach a state, a plan or any output.
 */
const EXAMPLES = EXAMPLES_DIR;
const EXAMPLE_FILES = EXAMPLE_CONFIGS;
const canaries = {
  vault: canaryKey('sk-proj-'),
  ssm: canaryKey('sk-ant-api03-'),
  writeOnly: canaryKey('sk-proj-'),
};

let server: RigboxServer;
let vault: VaultEngine;
let moto: MotoEngine;
let token = '';
const workspaces: TofuWorkspace[] = [];
// The engines' PATH: an empty folder, so neither they nor the provider can find a `node`.
const emptyBin = mkdtempSync(join(tmpdir(), 'rigbox-no-node-'));

const call = apiClient(
  () => server.url,
  () => token,
);
/** The API's answer body (these checks read bodies only). */
const api = async (method: string, path: string, body?: unknown) => (await call(method, path, body)).body;

beforeAll(async () => {
  server = await new RigboxServer().start();
  token = server.token('platform');
  vault = await startVault();
  await vault.writeSecret('teams/ml/openai', { api_key: canaries.vault });
  moto = await startMoto();
  const ssm = new SSMClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
  await ssm.send(
    new PutParameterCommand({ Name: '/rigbox/ml/anthropic', Value: canaries.ssm, Type: 'SecureString' }),
  );
}, 180_000);

afterAll(async () => {
  const outputs = [...workspaces.map((w) => w.transcript.join('\n')), server?.output ?? ''];
  const dirs = workspaces.map((w) => folderBytes(w.dir));
  await server?.stop();
  await vault?.stop();
  await moto?.stop();
  try {
    for (const [name, canary] of Object.entries(canaries)) {
      for (const text of outputs) expect(text, `canary ${name} in output`).not.toContain(canary);
      for (const bytes of dirs)
        expect(bytes.includes(canary), `canary ${name} in a working directory`).toBe(false);
    }
  } finally {
    for (const w of workspaces) w.dispose();
    await server?.dispose();
    rmSync(emptyBin, { recursive: true, force: true });
  }
}, 60_000);

/** The command of an example's import.sh, with the engine in place of `terraform` and a real id. */
function importArgs(example: string, id: string): string[] {
  const line = readFileSync(join(EXAMPLES, example), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('terraform import '));
  if (!line) throw new Error(`${example} has no terraform import command`);
  const [, , address, exampleId] = line.trim().split(/\s+/);
  return ['import', '-no-color', '-input=false', address ?? '', exampleId === 'defaults' ? exampleId : id];
}

describe.each(ENGINES)('%s', (engine) => {
  it('locks, inits, applies, imports and destroys provider/examples with no node on the PATH', async () => {
    expect(providerKind().kind).toBe('sea');
    expect(spawnSync('/bin/sh', ['-c', 'command -v node'], { env: { PATH: emptyBin } }).status).not.toBe(0);
    const ml = (await api('POST', '/api/workspaces', { name: `ml-${engine}` })).id;
    const research = (await api('POST', '/api/workspaces', { name: `research-${engine}` })).id;
    const env = {
      PATH: emptyBin,
      ...engineEnv({ server, token, vault, moto }),
      TF_VAR_workspace_id: ml,
      TF_VAR_research_workspace_id: research,
      // As a pipeline passes it: an environment variable, never an argument.
      TF_VAR_research_openai_key: canaries.writeOnly,
    };
    const w = new TofuWorkspace(env, engine);
    workspaces.push(w);
    for (const f of EXAMPLE_FILES) copyFileSync(join(EXAMPLES, f), join(w.dir, f.replaceAll('/', '_')));

    await w.ok(['providers', 'lock', '-no-color', `-fs-mirror=${MIRROR}`, `-platform=${PLATFORM}`]);
    const lock = readFileSync(join(w.dir, '.terraform.lock.hcl'), 'utf8');
    await w.init();
    expect(readFileSync(join(w.dir, '.terraform.lock.hcl'), 'utf8')).toBe(lock);
    await w.apply();

    const mlConfig = await api('GET', `/api/workspaces/${ml}/ai-config`);
    expect(mlConfig).toMatchObject({ mode: 'byok', provider: 'openai', model: 'gpt-4o', api_key_set: true });
    expect(await api('GET', `/api/workspaces/${research}/ai-config`)).toMatchObject({
      mode: 'byok',
      provider: 'openai',
      api_key_set: true,
    });
    expect(await api('GET', '/api/users/me/ai-defaults')).toMatchObject({
      mode: 'byok',
      provider: 'anthropic',
      api_key_set: true,
    });
    const outputs = JSON.parse((await w.ok(['output', '-json', '-no-color'])).stdout);
    expect(outputs.ml_api_key_fingerprint.value).toBe(mlConfig.api_key_fingerprint);
    expect(w.stateFile()).not.toContain(canaries.writeOnly);
    const plan = await w.plan();
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);

    // import.sh, in a second working directory with the same configuration.
    const imported = new TofuWorkspace(env, engine);
    workspaces.push(imported);
    for (const f of EXAMPLE_FILES)
      copyFileSync(join(EXAMPLES, f), join(imported.dir, f.replaceAll('/', '_')));
    await imported.init();
    for (const example of EXAMPLE_IMPORTS) await imported.ok(importArgs(example, ml));
    const state = JSON.stringify(await imported.showJson());
    expect(state).toContain(`"workspace_id":"${ml}"`);
    expect(state).toContain('"address":"rigbox_ai_defaults.mine"');

    await w.ok(['destroy', '-auto-approve', '-no-color', '-input=false']);
    expect(await api('GET', `/api/workspaces/${ml}/ai-config`)).toMatchObject({ api_key_set: false });
    expect(await api('GET', '/api/users/me/ai-defaults')).toMatchObject({ api_key_set: false });
  }, 240_000);
});
