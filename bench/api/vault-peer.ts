/**
 * The side-by-side peer of bench/api: a real HashiCorp Vault server as a production deployment runs
 * it, not the dev server: file storage, initialised and unsealed (one key share), KV v2 at
 * `secret/`, and a non-root token whose policy allows only the benchmark's paths.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnEngine, toolPath, waitUntilReady } from '../../scripts/lib/engine-process.js';
import { freePort } from '../../scripts/lib/ports.js';

export interface VaultPeer {
  readonly address: string;
  /** A token with the `bench` policy only: create, read and update under `secret/data/bench/`. */
  readonly token: string;
  /** The server's process id, for its CPU counters. */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

const POLICY = `
path "secret/data/bench/*" {
  capabilities = ["create", "read", "update"]
}
`;

export interface VaultPeerOptions {
  /**
   * Enable a file audit device (`vault audit enable file`), as production Vaults run: every request
   * and response is then written, HMAC'd, to a log file before Vault answers. The peer the issue
   * names has none; this is a second, labelled comparison (rigbox writes an audit row per write).
   */
  fileAudit?: boolean;
}

export async function startVaultPeer(options: VaultPeerOptions = {}): Promise<VaultPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'rigbox-bench-vault-'));
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, 'vault.hcl'),
    `storage "file" {
  path = "${join(dir, 'data')}"
}
listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
api_addr      = "${address}"
disable_mlock = true
ui            = false
`,
  );
  const engine = spawnEngine(
    'vault (file storage)',
    toolPath('vault'),
    ['server', `-config=${join(dir, 'vault.hcl')}`],
    {
      ...process.env,
      HOME: dir,
      VAULT_ADDR: address,
    },
  );
  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await fetch(`${address}/v1/${path}`, {
      method,
      headers: { ...(token ? { 'x-vault-token': token } : {}), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`vault ${method} /v1/${path}: HTTP ${res.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  try {
    // Uninitialised, sealed: sys/health answers 501 then; any answer means it listens.
    await waitUntilReady(engine, async () => (await fetch(`${address}/v1/sys/health`)).status > 0);
    const init = (await call('PUT', 'sys/init', undefined, { secret_shares: 1, secret_threshold: 1 })) as {
      keys_base64: string[];
      root_token: string;
    };
    await call('PUT', 'sys/unseal', undefined, { key: init.keys_base64[0] });
    await waitUntilReady(engine, async () => (await fetch(`${address}/v1/sys/health`)).status === 200);
    const root = init.root_token;
    await call('POST', 'sys/mounts/secret', root, { type: 'kv', options: { version: '2' } });
    await call('PUT', 'sys/policies/acl/bench', root, { policy: POLICY });
    const created = (await call('POST', 'auth/token/create', root, {
      policies: ['bench'],
      no_default_policy: true,
      // An orphan: revoking the root token below would revoke its children too.
      no_parent: true,
      ttl: '2h',
    })) as { auth: { client_token: string } };
    if (options.fileAudit) {
      await call('PUT', 'sys/audit/file', root, {
        type: 'file',
        options: { file_path: join(dir, 'audit.log') },
      });
    }
    // The root token is not needed again: revoke it, as an operator would.
    await call('POST', 'auth/token/revoke-self', root);
    return {
      address,
      token: created.auth.client_token,
      pid: engine.pid,
      async stop() {
        await engine.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
