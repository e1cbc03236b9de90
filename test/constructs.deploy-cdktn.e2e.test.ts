import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoEngine, startMoto } from './engines/moto.js';
import { startVault, type VaultEngine } from './engines/vault.js';
import { apiClient } from './support/api.js';
import { CdktnProject, TSX_LOADER } from './support/cdktf.js';
import { engineEnv } from './support/engine-env.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { REPO, RigboxServer } from './support/rigbox-server.js';
import { ENGINES } from './support/tofu.js';

/**
 * The cdktn twin of constructs.deploy.e2e: examples/typescript-cdktn, built on
 * @rigbox/cdktn-constructs, synthesized and deployed with real OpenTofu, then HashiCorp
 * Terraform, and terraform-provider-rigbox against the real service, a real Vault dev server and
 * moto's SSM.
 * cdktn-cli needs Node >= 22.19 and this project runs on Node 20, so the steps are what the CLI
 * runs: the app (as examples/typescript-cdktn/cdktf.json says) with CDKTF_OUTDIR, then the engine
 * in cdktf.out/stacks/<stack>. Steps share one project folder, in order; each engine gets its own
 * service, Vault and moto.
 */

const STACK = 'rigbox-ai-config';

describe.each(ENGINES)('%s', (engine) => {
  const canaries = {
    vaultMl1: canaryKey('sk-proj-'),
    vaultMl2: canaryKey('sk-proj-'),
    ssmResearch: canaryKey('sk-ant-api03-'),
    ssmDefaults: canaryKey('sk-ant-api03-'),
  };

  let server: RigboxServer;
  let vault: VaultEngine;
  let moto: MotoEngine;
  let project: CdktnProject;
  let token = '';
  const ws: Record<'ml' | 'research' | 'support', string> = { ml: '', research: '', support: '' };

  const api = apiClient(
    () => server.url,
    () => token,
  );
  const config = async (id: string) => (await api('GET', `/api/workspaces/${id}/ai-config`)).body;
  const defaults = async () => (await api('GET', '/api/users/me/ai-defaults')).body;
  const outputs = async () => {
    const res = await project.inStack(STACK, ['output', '-json']);
    return Object.fromEntries(
      Object.entries(JSON.parse(res.stdout) as Record<string, { value: unknown }>).map(([k, v]) => [
        k,
        v.value,
      ]),
    );
  };

  beforeAll(async () => {
    server = await new RigboxServer().start();
    token = server.token('platform');
    for (const team of Object.keys(ws) as (keyof typeof ws)[]) {
      ws[team] = (await api('POST', '/api/workspaces', { name: team })).body.id;
    }
    vault = await startVault();
    await vault.writeSecret('teams/ml/openai', { api_key: canaries.vaultMl1 });
    moto = await startMoto();
    const ssm = new SSMClient({
      endpoint: moto.endpoint,
      region: moto.region,
      credentials: moto.credentials,
    });
    for (const [name, value] of [
      ['/rigbox/research/anthropic', canaries.ssmResearch],
      ['/rigbox/platform/anthropic', canaries.ssmDefaults],
    ] as const) {
      await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString' }));
    }
    // The example's cdktf.json `app`, started from the project folder by absolute paths.
    const example = join(REPO, 'examples/typescript-cdktn');
    const app = String(JSON.parse(readFileSync(join(example, 'cdktf.json'), 'utf8')).app)
      .split(' ')
      .map((part) => (part === 'node' ? process.execPath : part === 'tsx' ? TSX_LOADER : part))
      .map((part) => (part.endsWith('.ts') ? join(example, part) : part));
    expect(app).toEqual([process.execPath, '--import', TSX_LOADER, join(example, 'main.ts')]);
    project = new CdktnProject(
      app,
      {
        ...engineEnv({ server, token, vault, moto }),
        TF_VAR_ml_workspace_id: ws.ml,
        TF_VAR_research_workspace_id: ws.research,
        TF_VAR_support_workspace_id: ws.support,
      },
      engine,
    );
  }, 180_000);

  afterAll(async () => {
    // The invariant: no canary in cdktf.out, the state (and its backup), anything the app, the engine
    // or the provider printed, the service's log or its database.
    const outputsText = [project?.transcript.join('\n') ?? '', server?.output ?? ''];
    const projectFiles = project ? folderBytes(project.dir) : Buffer.alloc(0);
    const db = server ? folderBytes(server.dataDir) : Buffer.alloc(0);
    await server?.stop();
    await vault?.stop();
    await moto?.stop();
    try {
      for (const [name, canary] of Object.entries(canaries)) {
        for (const text of outputsText) expect(text, `canary ${name} in output`).not.toContain(canary);
        expect(projectFiles.includes(canary), `canary ${name} in the cdktn project folder`).toBe(false);
        expect(db.includes(canary), `canary ${name} in the database`).toBe(false);
      }
    } finally {
      project?.dispose();
      await server?.dispose();
    }
  }, 60_000);

  describe(`cdktn deploy of examples/typescript-cdktn with real ${engine}, service, Vault and moto`, {
    timeout: 150_000,
  }, () => {
    let firstFingerprint = '';

    it('step 1: synth, init and apply create the defaults and the three workspace configs', async () => {
      await project.synth();
      const tf = JSON.parse(readFileSync(join(project.stackDir(STACK), 'cdk.tf.json'), 'utf8'));
      // The state goes where cdktn's default local backend puts it: the project folder.
      expect(tf.terraform.backend.local.path).toBe(join(project.dir, `terraform.${STACK}.tfstate`));
      await project.inStack(STACK, ['init', '-input=false']);
      const res = await project.inStack(STACK, ['apply', '-auto-approve', '-input=false']);
      expect(res.stdout).toMatch(/Apply complete! Resources: 4 added, 0 changed, 0 destroyed/);
      const ml = await config(ws.ml);
      expect(ml).toMatchObject({ mode: 'byok', provider: 'openai', model: 'gpt-4o', api_key_set: true });
      expect(await config(ws.research)).toMatchObject({
        mode: 'byok',
        provider: 'anthropic',
        model: 'claude-sonnet-4-20250514',
        api_key_set: true,
      });
      expect(await config(ws.support)).toMatchObject({
        mode: 'managed',
        provider: 'anthropic',
        api_key_set: false,
      });
      expect(await defaults()).toMatchObject({ mode: 'byok', provider: 'anthropic', api_key_set: true });
      expect(await outputs()).toEqual({
        ml_api_key_fingerprint: ml.api_key_fingerprint,
        ml_key_source_version: '1',
      });
      firstFingerprint = ml.api_key_fingerprint;
    });

    it('step 2: a new synth and plan show no changes', async () => {
      const before = await config(ws.ml);
      await project.synth();
      const res = await project.inStack(STACK, ['plan', '-detailed-exitcode', '-input=false'], { ok: false });
      expect(res.code, res.stdout + res.stderr).toBe(0);
      expect(res.stdout).toMatch(/No changes/);
      expect((await config(ws.ml)).revision).toBe(before.revision);
    });

    it('step 3: a change made through the API shows in the plan', async () => {
      await api('PUT', `/api/workspaces/${ws.ml}/ai-config`, {
        mode: 'byok',
        provider: 'openai',
        model: 'gpt-4.1',
      });
      const res = await project.inStack(STACK, ['plan', '-detailed-exitcode', '-input=false'], { ok: false });
      expect(res.code, res.stderr).toBe(2);
      expect(res.stdout).toMatch(/rigbox_workspace_ai_config\.ml (\(ml\) )?will be updated in-place/);
      expect(res.stdout).toMatch(/model\s+=\s+"gpt-4\.1" -> "gpt-4o"/);
      expect(res.stdout).toMatch(/Plan: 0 to add, 1 to change, 0 to destroy/);
    });

    it('step 4: rotate the key in Vault; apply sends the new key, then the plan is empty', async () => {
      await vault.writeSecret('teams/ml/openai', { api_key: canaries.vaultMl2 });
      // The apply that reads a key runs with the engine's debug log (provider output included),
      // written into the project folder and so scanned with everything else.
      mkdirSync(join(project.dir, 'logs'));
      const res = await project.inStack(STACK, ['apply', '-auto-approve', '-input=false'], {
        env: { TF_LOG: 'debug', TF_LOG_PATH: join(project.dir, 'logs/tofu.log') },
      });
      expect(res.stdout).toMatch(/Resources: 0 added, 1 changed, 0 destroyed/);
      expect(readFileSync(join(project.dir, 'logs/tofu.log'), 'utf8')).toMatch(/ApplyResourceChange/);
      const ml = await config(ws.ml);
      expect(ml).toMatchObject({ model: 'gpt-4o', api_key_set: true });
      expect(ml.api_key_fingerprint).not.toBe(firstFingerprint);
      expect(await outputs()).toEqual({
        ml_api_key_fingerprint: ml.api_key_fingerprint,
        ml_key_source_version: '2',
      });
      const plan = await project.inStack(STACK, ['plan', '-detailed-exitcode', '-input=false'], {
        ok: false,
      });
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    });

    it('step 5: destroy clears the keys in Rigbox', async () => {
      const res = await project.inStack(STACK, ['destroy', '-auto-approve', '-input=false']);
      expect(res.stdout).toMatch(/Destroy complete! Resources: 4 destroyed/);
      expect(await config(ws.ml)).toMatchObject({ api_key_set: false });
      expect(await config(ws.research)).toMatchObject({ api_key_set: false });
      expect(await defaults()).toMatchObject({ api_key_set: false });
      const state = JSON.parse(readFileSync(join(project.dir, `terraform.${STACK}.tfstate`), 'utf8'));
      expect(state.resources).toEqual([]);
    });
  });
});
