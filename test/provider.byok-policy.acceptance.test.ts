import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from './support/api.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { RigboxServer } from './support/rigbox-server.js';
import { ENGINES, TofuWorkspace } from './support/tofu.js';

/**
 * Acceptance tests of the BYOK policy in terraform-provider-rigbox (issue 18), with the real `tofu`
 * and `terraform` binaries, each in turn, against a real `rigbox serve`: rigbox_byok_policy
 * (create, empty plan, drift, import, destroy), data "rigbox_byok_report", and the plan-time checks
 * of rigbox_workspace_ai_config and rigbox_ai_defaults: under enforce, plan fails before apply
 * naming the rule and the attribute; under report it warns; a key past its age is a warning to
 * rotate it at its source.
 */

describe.each(ENGINES)('%s', (engine) => {
  const canary = canaryKey('sk-proj-');
  let server: RigboxServer;
  let token = '';
  let ws = '';
  let tofu: TofuWorkspace;
  const others: TofuWorkspace[] = [];

  const api = apiClient(
    () => server.url,
    () => token,
  );

  interface Options {
    enforcement?: string;
    model?: string;
    defaultsProvider?: string;
    workspace?: string;
    maxAge?: number;
  }

  /** The policy, a workspace's config, the defaults and the report, saying only what differs. */
  function config(o: Options = {}): string {
    return `
terraform {
  required_providers {
    rigbox = { source = "rigbox/rigbox" }
  }
}

provider "rigbox" {}

variable "openai_key" {
  type      = string
  sensitive = true
}

resource "rigbox_byok_policy" "org" {
  ${o.enforcement ? `enforcement = "${o.enforcement}"` : ''}
  allowed_providers = ["openai", "anthropic"]
  allowed_models = {
    openai = ["gpt-4o", "gpt-4o-mini"]
  }
  max_key_age_days = ${o.maxAge ?? 90}
}

resource "rigbox_workspace_ai_config" "ml" {
  workspace_id = "${ws}"
  mode         = "byok"
  ai_provider  = "openai"
  model        = "${o.model ?? 'gpt-4o'}"
  api_key_wo         = var.openai_key
  api_key_wo_version = 1
  ${o.workspace ?? ''}
}

resource "rigbox_ai_defaults" "org" {
  mode        = "managed"
  ai_provider = "${o.defaultsProvider ?? 'anthropic'}"
}

data "rigbox_byok_report" "now" {
  depends_on = [rigbox_byok_policy.org, rigbox_workspace_ai_config.ml, rigbox_ai_defaults.org]
}

output "compliant" {
  value = data.rigbox_byok_report.now.compliant
}

output "noncompliant" {
  value = data.rigbox_byok_report.now.noncompliant_workspace_ids
}
`;
  }

  const env = () => ({ TF_VAR_openai_key: canary });
  const plan = (w = tofu) => w.run(['plan', '-detailed-exitcode', '-no-color', '-input=false'], env());
  const apply = (w = tofu) => w.ok(['apply', '-auto-approve', '-no-color', '-input=false'], env());
  const outputs = async () =>
    JSON.parse((await tofu.ok(['output', '-json', '-no-color'])).stdout) as Record<
      string,
      { value: unknown }
    >;

  beforeAll(async () => {
    server = await new RigboxServer().start();
    token = server.token('compliance');
    ws = (await api('POST', '/api/workspaces', { name: 'ml-team' })).body.id;
    tofu = new TofuWorkspace({ RIGBOX_ENDPOINT: server.url, RIGBOX_TOKEN: token }, engine);
  }, 120_000);

  afterAll(async () => {
    const texts = [tofu?.transcript.join('\n') ?? '', ...others.map((w) => w.transcript.join('\n'))];
    const files = [tofu, ...others].filter(Boolean).map((w) => folderBytes(w.dir));
    await server?.stop();
    try {
      for (const text of [...texts, server?.output ?? '']) expect(text).not.toContain(canary);
      for (const bytes of files) expect(bytes.includes(canary)).toBe(false);
    } finally {
      tofu?.dispose();
      for (const w of others) w.dispose();
      await server?.dispose();
    }
  }, 60_000);

  it('step 1: create the policy with compliant configs; the report says compliant; a second plan is empty', async () => {
    tofu.write(config());
    await tofu.init();
    await apply();
    const policy = (await api('GET', '/api/users/me/byok-policy')).body;
    expect(policy).toMatchObject({
      enforcement: 'enforce',
      allowed_providers: ['openai', 'anthropic'],
      allowed_models: { openai: ['gpt-4o', 'gpt-4o-mini'] },
      max_key_age_days: 90,
      revision: 1,
    });
    expect((await outputs()).compliant?.value).toBe(true);
    const again = await plan();
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('step 2: drift: the policy changed out of band shows in plan, and apply restores it', async () => {
    const changed = await api('PUT', '/api/users/me/byok-policy', {
      enforcement: 'report',
      allowed_providers: ['openai'],
    });
    expect(changed.status).toBe(200);
    const drift = await plan();
    expect(drift.code, drift.stderr).toBe(2);
    expect(drift.stdout).toMatch(/enforcement\s+=\s+"report" -> "enforce"/);
    expect(drift.stdout).toMatch(/max_key_age_days\s+=\s+90/);
    await apply();
    expect((await api('GET', '/api/users/me/byok-policy')).body).toMatchObject({
      enforcement: 'enforce',
      allowed_providers: ['openai', 'anthropic'],
      max_key_age_days: 90,
    });
    expect((await plan()).code).toBe(0);
  });

  it('step 3: enforce: plan fails before apply, naming the rule and the attribute; nothing changes', async () => {
    const before = (await api('GET', `/api/workspaces/${ws}/ai-config`)).body;
    tofu.write(config({ model: 'gpt-3.5-turbo' }));
    const res = await plan();
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('BYOK Policy Violation');
    expect(res.stderr).toMatch(/Rule allowed_models: model "gpt-3.5-turbo" is not allowed for "openai"/);
    // The attribute: the diagnostic points at the model line of the resource.
    expect(res.stderr).toMatch(/rigbox_workspace_ai_config\.ml[\s\S]*model\s+= "gpt-3\.5-turbo"/);
    expect((await api('GET', `/api/workspaces/${ws}/ai-config`)).body).toEqual(before);

    tofu.write(config({ defaultsProvider: 'google' }));
    const defaults = await plan();
    expect(defaults.code).toBe(1);
    expect(defaults.stderr).toMatch(/Rule allowed_providers: provider "google" is not allowed/);
    expect(defaults.stderr).toMatch(/rigbox_ai_defaults\.org[\s\S]*ai_provider\s+= "google"/);
  });

  it('step 4: report: plan warns, apply writes, the report names the workspace', async () => {
    // Plan checks against the policy in force: switch it to report first.
    tofu.write(config({ enforcement: 'report' }));
    await apply();
    tofu.write(config({ enforcement: 'report', model: 'gpt-3.5-turbo' }));
    const res = await plan();
    expect(res.code, res.stderr).toBe(2);
    expect(`${res.stdout}${res.stderr}`).toContain('BYOK Policy Violation (Report Only)');
    await apply();
    expect((await api('GET', `/api/workspaces/${ws}/ai-config`)).body.model).toBe('gpt-3.5-turbo');
    // The report is read during apply, before the config changes are all in: read it again.
    await tofu.ok(['apply', '-refresh-only', '-auto-approve', '-no-color'], env());
    const out = await outputs();
    expect(out.compliant?.value).toBe(false);
    expect(out.noncompliant?.value).toEqual([ws]);
  });

  it('step 5: a key past max_key_age_days is a warning to rotate it at its source', async () => {
    tofu.write(config());
    await apply();
    // The key was set 200 days ago, as far as the service's database says.
    const db = new Database(join(server.dataDir, 'rigbox.db'));
    try {
      db.prepare(
        "UPDATE ai_configs SET key_updated_at = ? WHERE owner_kind = 'workspace' AND owner_id = ?",
      ).run(new Date(Date.now() - 200 * 86_400_000).toISOString(), ws);
    } finally {
      db.close();
    }
    const res = await plan();
    // No resource changes; only the report's outputs move (the key now breaks max_key_age_days).
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).not.toMatch(/will be (updated|created|destroyed)/);
    expect(res.stdout).toMatch(/compliant\s+= true -> false/);
    expect(`${res.stdout}${res.stderr}`).toMatch(/API Key Past Maximum Age/);
    // The engines wrap long lines: compare with whitespace collapsed.
    const said = `${res.stdout}${res.stderr}`.replace(/\s+/g, ' ');
    expect(said).toMatch(
      /set 200 days ago, past the BYOK policy limit of 90 days \(rule max_key_age_days\)\. Rotate it at its source/,
    );
  });

  it('step 6: import the policy into a new configuration: the plan is empty', async () => {
    const imported = new TofuWorkspace(tofu.env, engine);
    others.push(imported);
    imported.write(`
terraform {
  required_providers {
    rigbox = { source = "rigbox/rigbox" }
  }
}
provider "rigbox" {}
resource "rigbox_byok_policy" "org" {
  allowed_providers = ["openai", "anthropic"]
  allowed_models = {
    openai = ["gpt-4o", "gpt-4o-mini"]
  }
  max_key_age_days = 90
}
`);
    await imported.init();
    await imported.ok(['import', '-no-color', '-input=false', 'rigbox_byok_policy.org', 'byok_policy']);
    const res = await imported.run(['plan', '-detailed-exitcode', '-no-color', '-input=false']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
  });

  it('step 7: destroy leaves an empty policy (everything allowed)', async () => {
    await tofu.ok(['destroy', '-auto-approve', '-no-color', '-input=false'], env());
    expect((await api('GET', '/api/users/me/byok-policy')).body).toMatchObject({
      enforcement: 'enforce',
      allowed_modes: null,
      allowed_providers: null,
      allowed_models: null,
      max_key_age_days: null,
    });
  });
});
