import { once } from 'node:events';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVault, type VaultEngine } from './engines/vault.js';
import { apiClient } from './support/api.js';
import { startConnectProxy } from './support/connect-proxy.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { providerKind } from './support/provider-build.js';
import { RigboxServer } from './support/rigbox-server.js';
import { ENGINES, TofuWorkspace } from './support/tofu.js';

/**
 * The provider behind a corporate proxy, as the release ships it (the single executable, whose
 * proxy support is an embedded module loaded only when a proxy is set): with `HTTP_PROXY` set, its
 * calls to the Rigbox API and to Vault go through the proxy's CONNECT tunnels; with the hosts in
 * `NO_PROXY`, they go straight. On OpenTofu and on HashiCorp Terraform.
 */
describe.each(ENGINES)('%s', (engine) => {
  const canary = canaryKey('sk-proj-');
  let server: RigboxServer;
  let vault: VaultEngine;
  let proxy: Awaited<ReturnType<typeof startConnectProxy>>;
  let token = '';
  const workspaces: TofuWorkspace[] = [];
  const call = apiClient(
    () => server.url,
    () => token,
  );

  beforeAll(async () => {
    server = await new RigboxServer().start();
    token = server.token('platform');
    vault = await startVault();
    await vault.writeSecret('teams/ml/openai', { api_key: canary });
    proxy = await startConnectProxy();
  }, 180_000);

  afterAll(async () => {
    const outputs = [...workspaces.map((w) => w.transcript.join('\n')), server?.output ?? ''];
    const dirs = workspaces.map((w) => folderBytes(w.dir));
    proxy?.close();
    await server?.stop();
    await vault?.stop();
    try {
      for (const text of outputs) expect(text).not.toContain(canary);
      for (const bytes of dirs) expect(bytes.includes(canary)).toBe(false);
    } finally {
      for (const w of workspaces) w.dispose();
      await server?.dispose();
    }
  }, 60_000);

  it('reaches the API and Vault through HTTP_PROXY, and straight to the hosts NO_PROXY lists', async () => {
    expect(providerKind().kind).toBe('sea');
    const ws = (await call('POST', '/api/workspaces', { name: `proxied-${engine}` })).body.id as string;
    const hcl = (model: string) => `
      terraform {
        required_providers {
          rigbox = { source = "rigbox/rigbox" }
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
            path  = "teams/ml/openai"
            field = "api_key"
          }
        }
      }`;
    const env = {
      RIGBOX_ENDPOINT: server.url,
      RIGBOX_TOKEN: token,
      VAULT_ADDR: vault.address,
      VAULT_TOKEN: vault.rootToken,
      HTTP_PROXY: proxy.url,
      HTTPS_PROXY: proxy.url,
      NO_PROXY: '',
      no_proxy: '',
    };
    const w = new TofuWorkspace(env, engine);
    workspaces.push(w);
    w.write(hcl('gpt-4o'));
    await w.init();
    await w.apply();
    const apiHost = new URL(server.url).host;
    const vaultHost = new URL(vault.address).host;
    expect(new Set(proxy.tunnels)).toEqual(new Set([apiHost, vaultHost]));
    expect((await call('GET', `/api/workspaces/${ws}/ai-config`)).body).toMatchObject({
      model: 'gpt-4o',
      api_key_set: true,
    });

    // The same hosts in NO_PROXY: not one more tunnel, and the change still applies.
    const tunnels = proxy.tunnels.length;
    const direct = { NO_PROXY: [apiHost, vaultHost].map((h) => h.split(':')[0]).join(',') };
    w.write(hcl('gpt-4o-mini'));
    await w.ok(['apply', '-auto-approve', '-no-color', '-input=false'], direct);
    const plan = await w.run(['plan', '-detailed-exitcode', '-no-color', '-input=false'], direct);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(proxy.tunnels).toHaveLength(tunnels);
    expect((await call('GET', `/api/workspaces/${ws}/ai-config`)).body).toMatchObject({
      model: 'gpt-4o-mini',
    });

    // A proxy that refuses every tunnel, with a 404 (as some do for a host they will not reach), to a
    // proxy URL that carries credentials, its debug log on: the refresh fails naming the proxy's
    // refusal, the resource stays in state (a 404 taken for the API's would drop it), and neither
    // the credentials nor the canary appear anywhere tofu shows.
    const refusing = await refusingProxy('404 Not Found');
    try {
      const password = 'pr0xy-pa55word-e2e';
      const refused = await w.run(['plan', '-detailed-exitcode', '-no-color', '-input=false'], {
        HTTP_PROXY: `http://corp-user:${password}@127.0.0.1:${refusing.port}`,
        HTTPS_PROXY: `http://corp-user:${password}@127.0.0.1:${refusing.port}`,
        DEBUG: '*',
        TF_LOG: 'debug',
      });
      const shown = refused.stdout + refused.stderr;
      expect(refused.code, shown).toBe(1);
      expect(shown).toContain('EPROXY_404');
      expect(shown).not.toContain(password);
      expect(refusing.connects()).toBeGreaterThan(0);
      const listed = await w.run(['state', 'list']);
      expect(listed.stdout).toContain('rigbox_workspace_ai_config.w');
    } finally {
      refusing.server.close();
    }
  }, 240_000);
});

/** A forward proxy that answers every CONNECT with `status` and closes. */
async function refusingProxy(status: string): Promise<{ server: Server; port: number; connects(): number }> {
  let connects = 0;
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      connects++;
      socket.end(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\n\r\n`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, connects: () => connects };
}
