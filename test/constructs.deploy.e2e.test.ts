import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoEngine, startMoto } from './engines/moto.js';
import { startVault, type VaultEngine } from './engines/vault.js';
import { apiClient } from './support/api.js';
import { CdktfProject, TSX_LOADER } from './support/cdktf.js';
import { engineEnv } from './support/engine-env.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { REPO, RigboxServer } from './support/rigbox-server.js';
import { ENGINES } from './support/tofu.js';

// `--skip-provider-lock`: cdktf would otherwise run `tofu providers lock`, which asks the registry
// for checksums; the tests install every provider from the offline mirror.

/**
 * The TypeScript example (examples/typescript, as the root cdktf.json runs it) deployed with the
 * real cdktf CLI driving OpenTofu, then HashiCorp Terraform, and terraform-provider-rigbox against
 * the real service, a real Vault dev server and moto's SSM. Steps share one project folder, in
 * order, like a user's day; each engine gets its own service, Vault and moto.
 */

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
  let project: CdktfProject;
  let token = '';
  const ws: Record<'ml' | 'research' | 'support', string> = { ml: '', research: '', support: '' };

  const api = apiClient(
    () => server.url,
    () => token,
  );
  const config = async (id: string) => (await api('GET', `/api/workspaces/${id}/ai-config`)).body;
  const defaults = async () => (await api('GET', '/api/users/me/ai-defaults')).body;

  const rootCdktfJson = () => JSON.parse(readFileSync(join(REPO, 'cdktf.json'), 'utf8'));
  const stateFile = () => join(project.dir, 'terraform.rigbox-ai-config.tfstate');
  const outputsFile = () => join(project.dir, 'outputs.json');
  const outputs = () =>
    JSON.parse(readFileSync(outputsFile(), 'utf8'))['rigbox-ai-config'] as Record<string, string>;

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
    // The root cdktf.json as it is, except that the app is started from this folder by absolute paths.
    const root = rootCdktfJson();
    const app = String(root.app)
      .replace('--import tsx', `--import ${TSX_LOADER}`)
      .replace(/^node /, `${process.execPath} `)
      .replace('examples/typescript/main.ts', join(REPO, 'examples/typescript/main.ts'));
    project = new CdktfProject(
      { ...root, app },
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
    // The invariant: no canary in cdktf.out, the state (and its backup), anything cdktf, tofu or the
    // provider printed, the service's log or its database.
    const outputsText = [project?.transcript.join('\n') ?? '', server?.output ?? ''];
    const projectFiles = project ? folderBytes(project.dir) : Buffer.alloc(0);
    const db = server ? folderBytes(server.dataDir) : Buffer.alloc(0);
    await server?.stop();
    await vault?.stop();
    await moto?.stop();
    try {
      for (const [name, canary] of Object.entries(canaries)) {
        for (const text of outputsText) expect(text, `canary ${name} in output`).not.toContain(canary);
        expect(projectFiles.includes(canary), `canary ${name} in the cdktf project folder`).toBe(false);
        expect(db.includes(canary), `canary ${name} in the database`).toBe(false);
      }
    } finally {
      project?.dispose();
      await server?.dispose();
    }
  }, 60_000);

  // Each step runs one or two cdktf commands (a CLI start, a synth, tofu init, plan, apply): give it room
  // on a loaded two-core CI machine.
  describe(`cdktf deploy of examples/typescript with real ${engine}, service, Vault and moto`, {
    timeout: 150_000,
  }, () => {
    let firstFingerprint = '';

    it('step 1: deploy creates the defaults and the three workspace configs', async () => {
      const res = await project.ok([
        'deploy',
        '--auto-approve',
        '--skip-provider-lock',
        '--outputs-file',
        outputsFile(),
      ]);
      expect(res.stdout).toMatch(/Apply complete! Resources: 5 added, 0 changed, 0 destroyed/);
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
      expect(outputs()).toEqual({
        ml_api_key_fingerprint: ml.api_key_fingerprint,
        ml_key_source_version: '1',
      });
      // The agents' restart ran once, with the fingerprint as its trigger.
      expect(res.stdout).toContain('ML workspace key changed: restarting its agents');
      expect(existsSync(join(project.dir, 'cdktf.out/stacks/rigbox-ai-config/cdk.tf.json'))).toBe(true);
      firstFingerprint = ml.api_key_fingerprint;
    });

    it('step 2: a second deploy changes nothing', async () => {
      const before = await config(ws.ml);
      const res = await project.ok(['deploy', '--auto-approve', '--skip-provider-lock']);
      expect(res.stdout).toMatch(/No changes/);
      expect(res.stdout).not.toContain('restarting its agents');
      expect((await config(ws.ml)).revision).toBe(before.revision);
    });

    it('step 3: a change made through the API shows in cdktf diff', async () => {
      await api('PUT', `/api/workspaces/${ws.ml}/ai-config`, {
        mode: 'byok',
        provider: 'openai',
        model: 'gpt-4.1',
      });
      const res = await project.ok(['diff', '--skip-provider-lock']);
      expect(res.stdout).toMatch(/rigbox_workspace_ai_config\.ml (\(ml\) )?will be updated in-place/);
      expect(res.stdout).toMatch(/model\s+=\s+"gpt-4\.1" -> "gpt-4o"/);
      expect(res.stdout).toMatch(/Plan: 0 to add, 1 to change, 0 to destroy/);
    });

    it('step 4: rotate the key in Vault; deploy sends the new key and restarts the agents', async () => {
      await vault.writeSecret('teams/ml/openai', { api_key: canaries.vaultMl2 });
      // The deploy that reads a key runs with debug logs from cdktf and OpenTofu (provider output
      // included), written into the project folder and so scanned with everything else.
      mkdirSync(join(project.dir, 'logs'));
      const res = await project.ok(
        ['deploy', '--auto-approve', '--skip-provider-lock', '--outputs-file', outputsFile()],
        {
          CDKTF_LOG_LEVEL: 'debug',
          CDKTF_LOG_FILE_DIRECTORY: join(project.dir, 'logs'),
          TF_LOG: 'debug',
          TF_LOG_PATH: join(project.dir, 'logs/tofu.log'),
        },
      );
      const ml = await config(ws.ml);
      expect(ml).toMatchObject({ model: 'gpt-4o', api_key_set: true });
      expect(ml.api_key_fingerprint).not.toBe(firstFingerprint);
      expect(outputs()).toEqual({
        ml_api_key_fingerprint: ml.api_key_fingerprint,
        ml_key_source_version: '2',
      });
      // The fingerprint trigger replaced the null_resource, so its provisioner ran again.
      expect(res.stdout).toContain('ML workspace key changed: restarting its agents');
      expect(res.stdout).toMatch(/Resources: 1 added, 1 changed, 1 destroyed/);
      expect(readFileSync(join(project.dir, 'logs/tofu.log'), 'utf8')).toMatch(/ApplyResourceChange/);
      const again = await project.ok(['deploy', '--auto-approve', '--skip-provider-lock']);
      expect(again.stdout).toMatch(/No changes/);
    });

    it('step 5: destroy clears the keys in Rigbox', async () => {
      const res = await project.ok(['destroy', '--auto-approve', '--skip-provider-lock']);
      expect(res.stdout).toMatch(/Destroy complete! Resources: 5 destroyed/);
      expect(await config(ws.ml)).toMatchObject({ api_key_set: false });
      expect(await config(ws.research)).toMatchObject({ api_key_set: false });
      expect(await defaults()).toMatchObject({ api_key_set: false });
      // The state (read before the afterAll scan) is empty of resources.
      const state = JSON.parse(readFileSync(stateFile(), 'utf8'));
      expect(state.resources).toEqual([]);
      expect(readdirSync(project.dir)).toContain('cdktf.out');
    });
  });
});
