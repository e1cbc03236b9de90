import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVault, type VaultEngine } from './engines/vault.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { RigboxServer } from './support/rigbox-server.js';
import { ENGINES, TofuWorkspace } from './support/tofu.js';

/**
 * Key-source failures that need a Vault of their own (AppRole with a denied path, then sealed):
 * each fails the apply with a clear diagnostic and leaves the Rigbox config as it was. Once per
 * engine (OpenTofu, HashiCorp Terraform), each with a Vault of its own.
 */
describe.each(ENGINES)('%s', (engine) => {
  const canary = canaryKey('sk-proj-');
  let server: RigboxServer;
  let vault: VaultEngine;
  let tofu: TofuWorkspace;
  let token = '';
  let ws = '';

  const config = async () =>
    (await (
      await fetch(`${server.url}/api/workspaces/${ws}/ai-config`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as Record<string, unknown>;

  const hcl = (path: string, model: string) => `
  terraform {
    required_providers {
      rigbox = { source = "rigbox/rigbox" }
    }
  }
  variable "secret_id" {
    type      = string
    sensitive = true
  }
  provider "rigbox" {
    vault {
      address = "${vault.address}"
      approle {
        role_id   = "${vault.roleId}"
        secret_id = var.secret_id
      }
    }
  }
  resource "rigbox_workspace_ai_config" "w" {
    workspace_id = "${ws}"
    mode         = "byok"
    ai_provider  = "openai"
    model        = "${model}"
    api_key_source {
      vault {
        mount = "secret"
        path  = "${path}"
        field = "api_key"
      }
    }
  }
  `;

  beforeAll(async () => {
    server = await new RigboxServer().start();
    token = server.token('ops');
    ws = (
      await (
        await fetch(`${server.url}/api/workspaces`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'failures' }),
        })
      ).json()
    ).id;
    vault = await startVault();
    await vault.writeSecret('teams/ok', { api_key: canary });
    await vault.writeSecret('denied/openai', { api_key: canary });
    tofu = new TofuWorkspace(
      {
        RIGBOX_ENDPOINT: server.url,
        RIGBOX_TOKEN: token,
        TF_VAR_secret_id: await vault.secretId(),
      },
      engine,
    );
  }, 120_000);

  afterAll(async () => {
    await server.stop();
    await vault.stop();
    try {
      expect(tofu.transcript.join('\n')).not.toContain(canary);
      expect(folderBytes(tofu.dir).includes(canary)).toBe(false);
      expect(server.output).not.toContain(canary);
    } finally {
      tofu.dispose();
      await server.dispose();
    }
  });

  it(`${engine}: reads the key with AppRole; a denied path and a sealed Vault fail the apply and change nothing`, async () => {
    tofu.write(hcl('teams/ok', 'gpt-4o'));
    await tofu.init();
    await tofu.apply();
    const before = await config();
    expect(before).toMatchObject({ api_key_set: true, model: 'gpt-4o' });

    tofu.write(hcl('denied/openai', 'gpt-5'));
    const denied = await tofu.run(['apply', '-auto-approve', '-no-color']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/Cannot Read API Key From Source[\s\S]*(permission|denied)/i);
    expect(await config()).toEqual(before);

    await vault.seal();
    tofu.write(hcl('teams/other', 'gpt-5'));
    const sealed = await tofu.run(['apply', '-auto-approve', '-no-color']);
    expect(sealed.code).toBe(1);
    expect(sealed.stderr).toMatch(/Cannot Read API Key From Source[\s\S]*sealed/i);
    expect(await config()).toEqual(before);
  });
});
