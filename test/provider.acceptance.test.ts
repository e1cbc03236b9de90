import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoEngine, startMoto } from './engines/moto.js';
import { startVault, type VaultEngine } from './engines/vault.js';
import { apiClient } from './support/api.js';
import { engineEnv } from './support/engine-env.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { RigboxServer } from './support/rigbox-server.js';
import { ENGINES, TofuWorkspace } from './support/tofu.js';

/**
 * Acceptance tests of terraform-provider-rigbox: the real `tofu` and `terraform` binaries, each in
 * turn, drive the provider against the real service, a real Vault dev server and moto's SSM. Steps
 * run in order and share one working directory, like a user's day; each engine gets its own
 * service, Vault and moto, so one engine's rotations do not move the other's versions.
 */

describe.each(ENGINES)('%s', (engine) => {
  const canaries = {
    vault1: canaryKey('sk-proj-'),
    vault2: canaryKey('sk-proj-'),
    vault3: canaryKey('sk-proj-'),
    ssm1: canaryKey('sk-ant-api03-'),
    ssm2: canaryKey('sk-ant-api03-'),
    outOfBand: canaryKey('sk-proj-'),
    writeOnly: canaryKey('sk-proj-'),
  };

  let server: RigboxServer;
  let vault: VaultEngine;
  let moto: MotoEngine;
  let ssm: SSMClient;
  let token = '';
  let ws = '';
  let tofu: TofuWorkspace;
  const extraWorkspaces: TofuWorkspace[] = [];
  const auditDir = mkdtempSync(join(tmpdir(), 'rigbox-vault-audit-'));
  const auditLog = join(auditDir, 'audit.log');

  const api = apiClient(
    () => server.url,
    () => token,
  );

  const config = (id: string) => api('GET', `/api/workspaces/${id}/ai-config`).then((r) => r.body);

  async function vaultAdmin(method: string, path: string, body?: unknown) {
    const res = await fetch(`${vault.address}/v1/${path}`, {
      method,
      headers: { 'x-vault-token': vault.rootToken, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok && res.status !== 204)
      throw new Error(`vault ${method} ${path}: ${res.status} ${await res.text()}`);
  }

  /** Vault paths requested since the audit log had `from` bytes (the audit device logs every request). */
  function vaultPathsSince(from: number): string[] {
    const text = readFileSync(auditLog, 'utf8').slice(from);
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; request?: { path?: string } })
      .filter((e) => e.type === 'request')
      .map((e) => e.request?.path ?? '');
  }
  const auditSize = () => (existsSync(auditLog) ? readFileSync(auditLog).length : 0);

  interface Options {
    mode?: string;
    provider?: string;
    model?: string | null;
    source?: string;
    extra?: string;
  }

  const vaultSource = (version?: number) =>
    `api_key_source {\n    vault {\n      mount = "secret"\n      path  = "teams/ml/openai"\n      field = "api_key"\n${version ? `      version = ${version}\n` : ''}    }\n  }`;
  const ssmSource = () => 'api_key_source {\n    ssm {\n      name = "/rigbox/ml/anthropic"\n    }\n  }';

  const DEFAULTS = `
  resource "rigbox_ai_defaults" "org" {
    mode        = "byok"
    ai_provider = "anthropic"
    model       = "claude-sonnet-4-20250514"
    ${ssmSource()}
  }
  `;

  /** Small builders, so each step says only what differs. */
  function workspaceConfig(o: Options = {}): string {
    const model = o.model === undefined ? '"gpt-4o"' : o.model === null ? 'null' : `"${o.model}"`;
    return `
  terraform {
    required_providers {
      rigbox = { source = "rigbox/rigbox" }
    }
  }

  provider "rigbox" {}

  resource "rigbox_workspace_ai_config" "ml" {
    workspace_id = "${ws}"
    mode         = "${o.mode ?? 'byok'}"
    ai_provider  = "${o.provider ?? 'openai'}"
    model        = ${model}
    ${o.source ?? ((o.mode ?? 'byok') === 'byok' ? vaultSource() : '')}
    ${o.extra ?? ''}
  }
  `;
  }

  beforeAll(async () => {
    server = await new RigboxServer().start();
    token = server.token('platform');
    ws = (await api('POST', '/api/workspaces', { name: 'ml-team' })).body.id;
    vault = await startVault();
    await vaultAdmin('PUT', 'sys/audit/acceptance', { type: 'file', options: { file_path: auditLog } });
    await vault.writeSecret('teams/ml/openai', { api_key: canaries.vault1 });
    moto = await startMoto();
    ssm = new SSMClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
    await ssm.send(
      new PutParameterCommand({ Name: '/rigbox/ml/anthropic', Value: canaries.ssm1, Type: 'SecureString' }),
    );
    tofu = new TofuWorkspace(
      {
        ...engineEnv({ server, token, vault, moto }),
      },
      engine,
    );
  }, 180_000);

  /**
   * The invariant: no canary in any state, plan, engine output (TF_LOG=trace included), provider
   * log, service log or database file.
   */
  function expectNoCanary() {
    const outputs = [
      tofu.transcript.join('\n'),
      ...extraWorkspaces.map((w) => w.transcript.join('\n')),
      server.output,
    ];
    const files = [tofu, ...extraWorkspaces].map((w) => folderBytes(w.dir));
    const db = folderBytes(server.dataDir);
    for (const [name, canary] of Object.entries(canaries)) {
      for (const text of outputs) expect(text, `canary ${name} in output`).not.toContain(canary);
      for (const bytes of files)
        expect(bytes.includes(canary), `canary ${name} in a ${engine} working directory`).toBe(false);
      expect(db.includes(canary), `canary ${name} in the database`).toBe(false);
    }
  }

  afterAll(async () => {
    await server?.stop();
    await vault?.stop();
    await moto?.stop();
    tofu?.dispose();
    for (const w of extraWorkspaces) w.dispose();
    await server?.dispose();
    rmSync(auditDir, { recursive: true, force: true });
  }, 60_000);

  describe(`rigbox_workspace_ai_config with real ${engine}, service, Vault and moto`, () => {
    let firstFingerprint = '';

    it('step 1: create and read (key from Vault)', async () => {
      tofu.write(workspaceConfig());
      await tofu.init();
      await tofu.apply();
      const remote = await config(ws);
      expect(remote).toMatchObject({ mode: 'byok', provider: 'openai', model: 'gpt-4o', api_key_set: true });
      const show = await tofu.showJson();
      const values = (
        show as { values: { root_module: { resources: { values: Record<string, unknown> }[] } } }
      ).values.root_module.resources[0]!.values;
      expect(values).toMatchObject({
        id: ws,
        workspace_id: ws,
        api_key_set: true,
        api_key_fingerprint: remote.api_key_fingerprint,
        source_version: '1',
        revision: remote.revision,
        api_key_wo: null,
      });
      firstFingerprint = remote.api_key_fingerprint;
    });

    it('step 2: a second plan is empty', async () => {
      const plan = await tofu.plan();
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
      expect(plan.stdout).toContain('No changes');
    });

    it('step 3: update the model', async () => {
      const before = await config(ws);
      tofu.write(workspaceConfig({ model: 'gpt-4.1' }));
      await tofu.apply();
      const after = await config(ws);
      expect(after).toMatchObject({
        model: 'gpt-4.1',
        api_key_fingerprint: firstFingerprint,
        revision: before.revision + 1,
      });
      expect((await tofu.plan()).code).toBe(0);
    });

    it('step 4: drift: model changed out of band shows in refresh-only plan and apply restores it', async () => {
      await api('PUT', `/api/workspaces/${ws}/ai-config`, { mode: 'byok', provider: 'openai', model: 'o3' });
      const refresh = await tofu.plan('-refresh-only');
      expect(refresh.code, refresh.stderr).toBe(2);
      expect(refresh.stdout).toMatch(/model\s+=\s+"gpt-4.1" -> "o3"/);
      await tofu.apply();
      expect((await config(ws)).model).toBe('gpt-4.1');
      expect((await tofu.plan()).code).toBe(0);
    });

    it('step 5: drift: key replaced out of band: plan re-applies the key from Vault', async () => {
      await api('PUT', `/api/workspaces/${ws}/ai-config`, {
        mode: 'byok',
        provider: 'openai',
        api_key: canaries.outOfBand,
      });
      expect((await config(ws)).api_key_fingerprint).not.toBe(firstFingerprint);
      const plan = await tofu.plan();
      expect(plan.code).toBe(2);
      expect(plan.stdout).toMatch(/api_key_fingerprint\s+=\s+"[^"]+" -> \(known after apply\)/);
      await tofu.apply();
      expect((await config(ws)).api_key_fingerprint).toBe(firstFingerprint);
      expect((await tofu.plan()).code).toBe(0);
    });

    it('step 6: drift: key cleared out of band: plan re-applies it', async () => {
      await api('PUT', `/api/workspaces/${ws}/ai-config`, {
        mode: 'byok',
        provider: 'openai',
        api_key: null,
      });
      const refresh = await tofu.plan('-refresh-only');
      expect(refresh.code).toBe(2);
      const plan = await tofu.plan();
      expect(plan.code).toBe(2);
      await tofu.apply();
      expect(await config(ws)).toMatchObject({ api_key_set: true, api_key_fingerprint: firstFingerprint });
    });

    it('step 7: drift: Vault secret rotated: plan shows an update having read only metadata', async () => {
      await vault.writeSecret('teams/ml/openai', { api_key: canaries.vault2 });
      const from = auditSize();
      const plan = await tofu.plan();
      expect(plan.code).toBe(2);
      expect(plan.stdout).toMatch(/source_version\s+=\s+"2" -> \(known after apply\)/);
      const paths = vaultPathsSince(from);
      expect(paths).toContain('secret/metadata/teams/ml/openai');
      expect(paths.filter((p) => p.startsWith('secret/data/'))).toEqual([]);
      await tofu.apply();
      const after = await config(ws);
      expect(after.api_key_fingerprint).not.toBe(firstFingerprint);
      expect((await tofu.showJson()) as unknown).toMatchObject({});
      expect((await tofu.plan()).code).toBe(0);
    });

    it('step 8: a pinned version does not move on rotation', async () => {
      tofu.write(workspaceConfig({ model: 'gpt-4.1', source: vaultSource(2) }));
      await tofu.apply();
      await vault.writeSecret('teams/ml/openai', { api_key: canaries.vault3 });
      const plan = await tofu.plan();
      expect(plan.code, plan.stdout).toBe(0);
    });

    it('step 9: import by workspace id and verify', async () => {
      const imported = new TofuWorkspace(tofu.env, engine);
      extraWorkspaces.push(imported);
      imported.write(workspaceConfig({ model: 'gpt-4.1', source: vaultSource(2) }));
      await imported.init();
      await imported.ok(['import', '-no-color', 'rigbox_workspace_ai_config.ml', ws]);
      const show = await imported.showJson();
      expect(JSON.stringify(show)).toContain('"model":"gpt-4.1"');
      expect(JSON.stringify(show)).toContain(`"workspace_id":"${ws}"`);
      // The key cannot be compared without reading it back, so the first plan after import re-applies it.
      const plan = await imported.plan();
      expect(plan.code).toBe(2);
      expect(plan.stdout).toMatch(/api_key_fingerprint/);
    });

    it('step 10: switch byok to managed and back', async () => {
      tofu.write(
        workspaceConfig({
          mode: 'managed',
          provider: 'anthropic',
          model: 'claude-sonnet-4-20250514',
          source: '',
        }),
      );
      await tofu.apply();
      expect(await config(ws)).toMatchObject({ mode: 'managed', provider: 'anthropic', api_key_set: false });
      expect((await tofu.plan()).code).toBe(0);
      tofu.write(workspaceConfig({ model: 'gpt-4.1' }));
      await tofu.apply();
      expect(await config(ws)).toMatchObject({ mode: 'byok', provider: 'openai', api_key_set: true });
      expect((await tofu.plan()).code).toBe(0);
    });

    it('step 11: a write-only key from a variable never reaches state', async () => {
      const wo = 'api_key_wo = var.openai_key\n  api_key_wo_version = 1';
      tofu.write(
        `${workspaceConfig({ model: 'gpt-4.1', source: '', extra: wo })}\nvariable "openai_key" {\n  type      = string\n  sensitive = true\n}\n`,
      );
      // Passed the way a pipeline would: an environment variable, never a command-line argument.
      await tofu.ok(['apply', '-auto-approve', '-no-color'], { TF_VAR_openai_key: canaries.writeOnly });
      expect(tofu.stateFile()).not.toContain(canaries.writeOnly);
      expect((await config(ws)).api_key_set).toBe(true);
      const plan = await tofu.run(['plan', '-detailed-exitcode', '-no-color'], {
        TF_VAR_openai_key: canaries.writeOnly,
      });
      expect(plan.code).toBe(0);
    });

    it('step 12: bad configs get diagnostics on the right attribute', async () => {
      const bad = new TofuWorkspace(tofu.env, engine);
      extraWorkspaces.push(bad);
      const cases: [string, string, RegExp][] = [
        [
          'both a source and api_key_wo',
          workspaceConfig({ extra: 'api_key_wo = "x"\n  api_key_wo_version = 1' }),
          /Conflicting Key Inputs[\s\S]*api_key_wo/,
        ],
        ['byok without key', workspaceConfig({ source: '' }), /Missing API Key/],
        [
          'managed with key',
          workspaceConfig({ mode: 'managed', provider: 'openai', source: vaultSource() }),
          /Key Not Allowed In Managed Mode/,
        ],
        [
          'unknown ai_provider',
          workspaceConfig({ provider: 'acme' }),
          /Invalid AI Provider[\s\S]*ai_provider/,
        ],
        [
          'malformed Vault reference',
          workspaceConfig({
            source:
              'api_key_source {\n vault {\n mount = "secret"\n path = "data/teams/ml"\n field = "k"\n }\n }',
          }),
          /Invalid Key Source Reference[\s\S]*data/,
        ],
      ];
      bad.write(cases[0]![1]);
      await bad.init();
      for (const [name, hcl, message] of cases) {
        bad.write(hcl);
        const res = await bad.run(['validate', '-no-color']);
        expect(res.code, name).toBe(1);
        expect(res.stderr + res.stdout, name).toMatch(message);
      }
    });

    it('step 13: source failures fail the apply and leave the remote config unchanged', async () => {
      tofu.write(workspaceConfig({ model: 'gpt-4.1' }));
      await tofu.apply();
      const before = await config(ws);
      const failing = async (source: string, message: RegExp, env: NodeJS.ProcessEnv = {}) => {
        tofu.write(workspaceConfig({ model: 'gpt-5', source }));
        const res = await tofu.run(['apply', '-auto-approve', '-no-color'], env);
        expect(res.code, `${source}\n${res.stdout}\n${res.stderr}`).toBe(1);
        expect(res.stderr).toMatch(message);
        expect(await config(ws)).toEqual(before);
      };
      const vaultAt = (path: string, field = 'api_key') =>
        `api_key_source {\n vault {\n mount = "secret"\n path = "${path}"\n field = "${field}"\n }\n }`;
      await failing(vaultAt('teams/missing'), /Cannot Read API Key From Source/);
      await failing(vaultAt('teams/ml/openai', 'nope'), /Cannot Read API Key From Source[\s\S]*nope/);
      await failing(
        'api_key_source {\n ssm {\n name = "/rigbox/missing"\n }\n }',
        /Cannot Read API Key From Source/,
      );
      // Vault down while the key must be read (the reference changed): the apply fails.
      await failing(vaultAt('teams/ml/other'), /Cannot Read API Key From Source[\s\S]*127.0.0.1:9/, {
        VAULT_ADDR: 'http://127.0.0.1:9',
      });
      // Vault down when the key need not be read: the model change applies; refresh warns that a
      // rotation cannot be checked.
      tofu.write(workspaceConfig({ model: 'gpt-5' }));
      const res = await tofu.ok(['apply', '-auto-approve', '-no-color'], {
        VAULT_ADDR: 'http://127.0.0.1:9',
      });
      expect(res.stdout + res.stderr).toMatch(/Cannot Check Key Source Version/);
      expect(await config(ws)).toMatchObject({
        model: 'gpt-5',
        api_key_fingerprint: before.api_key_fingerprint,
      });
    });

    it('step 14: rigbox_ai_defaults from SSM; a parameter update shows in plan', async () => {
      tofu.write(workspaceConfig({ model: 'gpt-4.1' }) + DEFAULTS);
      await tofu.apply();
      const d = (await api('GET', '/api/users/me/ai-defaults')).body;
      expect(d).toMatchObject({ mode: 'byok', provider: 'anthropic', api_key_set: true });
      expect((await tofu.plan()).code).toBe(0);
      await ssm.send(
        new PutParameterCommand({
          Name: '/rigbox/ml/anthropic',
          Value: canaries.ssm2,
          Type: 'SecureString',
          Overwrite: true,
        }),
      );
      const plan = await tofu.plan();
      expect(plan.code).toBe(2);
      expect(plan.stdout).toMatch(/source_version\s+=\s+"2" -> \(known after apply\)/);
      await tofu.apply();
      expect((await api('GET', '/api/users/me/ai-defaults')).body.api_key_fingerprint).not.toBe(
        d.api_key_fingerprint,
      );
    });

    it('step 14b: two applies racing on one workspace: the stale one fails, nothing is overwritten', async () => {
      // A second team's configuration for the same workspace, with its own state.
      const other = new TofuWorkspace(tofu.env, engine);
      extraWorkspaces.push(other);
      other.write(workspaceConfig({ model: 'o4-mini' }));
      await other.init();
      await other.ok(['import', '-no-color', 'rigbox_workspace_ai_config.ml', ws]);
      await other.apply();
      // Plan in our workspace, let the other team apply in between, then apply the saved plan.
      tofu.write(workspaceConfig({ model: 'gpt-4.1-mini' }) + DEFAULTS);
      await tofu.ok(['plan', '-no-color', '-out=race.tfplan']);
      other.write(workspaceConfig({ model: 'o3' }));
      await other.apply();
      const res = await tofu.run(['apply', '-auto-approve', '-no-color', 'race.tfplan']);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/AI Config Changed Concurrently/);
      expect((await config(ws)).model).toBe('o3');
      // After a refresh, the next plan shows the change to make and applies cleanly.
      await tofu.apply();
      expect((await config(ws)).model).toBe('gpt-4.1-mini');
    });

    it('step 15: plan files, show -json and TF_LOG=trace hold no key', async () => {
      await vault.writeSecret('teams/ml/openai', { api_key: canaries.vault3 });
      await tofu.ok(['plan', '-no-color', '-out=saved.tfplan']);
      await tofu.ok(['show', '-json', '-no-color', 'saved.tfplan']);
      await tofu.ok(['apply', '-auto-approve', '-no-color', 'saved.tfplan'], { TF_LOG: 'trace' });
      await tofu.showJson();
      expectNoCanary();
    });

    it('step 16: destroy clears the keys in Rigbox', async () => {
      await tofu.ok(['destroy', '-auto-approve', '-no-color']);
      expect(await config(ws)).toMatchObject({ mode: 'byok', api_key_set: false });
      expect((await api('GET', '/api/users/me/ai-defaults')).body.api_key_set).toBe(false);
    });

    it('step 17: after the day, no key in any state, plan, output, log or database file', async () => {
      // Stopped first, so the service's last log lines are scanned too.
      await server.stop();
      expectNoCanary();
    });
  });
});
