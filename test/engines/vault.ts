import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startVaultDevServer, type VaultDevServer } from '../../scripts/lib/vault.js';
import { trackScratchDir } from './engine-process.js';

/** The AppRole role and policy every test Vault is seeded with. */
export const READER_ROLE = 'rigbox';
export const READER_POLICY = 'rigbox-reader';

// Reads everything in the KV v2 mount `secret/` except under `denied/`, so one AppRole login can
// show both a successful read and permission_denied.
const readerPolicyHcl = `
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read"] }
path "secret/subkeys/*" { capabilities = ["read"] }
path "secret/data/denied/*" { capabilities = ["deny"] }
path "secret/metadata/denied/*" { capabilities = ["deny"] }
`;

export interface VaultEngineOptions {
  /** Serve HTTPS with a CA that Vault generates (`-dev-tls`); the CA is in `caCertPem`. @default false */
  readonly tls?: boolean;
}

/** A real Vault dev server on loopback, seeded for the key-source tests. */
export interface VaultEngine {
  /** `http://127.0.0.1:<port>` (or `https://` with `tls`). */
  readonly address: string;
  readonly rootToken: string;
  /** Role id of the AppRole role `rigbox`, which has the `rigbox-reader` policy. */
  readonly roleId: string;
  /** The CA that signed the server certificate when started with `tls`, else undefined. */
  readonly caCertPem: string | undefined;
  /** A fresh secret id for the role `rigbox`. */
  secretId(): Promise<string>;
  /** Everything the server printed so far. */
  output(): string;
  /** Writes a new version of `secret/<path>` (KV v2) and returns its version number. */
  writeSecret(path: string, data: Record<string, unknown>): Promise<number>;
  /** Destroys versions of `secret/<path>` for good. */
  destroyVersions(path: string, versions: readonly number[]): Promise<void>;
  /** Soft-deletes the latest version of `secret/<path>`. */
  deleteLatest(path: string): Promise<void>;
  /** Seals the server: from then on every request answers 503 "Vault is sealed". */
  seal(): Promise<void>;
  /** Kills the server and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `.tools/bin/vault server -dev` on a free loopback port (scripts/lib/vault.ts) and seeds it:
 * KV v2 at `secret/` (checked), AppRole at `approle/`, the policy `rigbox-reader` and the role `rigbox`.
 */
export async function startVault(options: VaultEngineOptions = {}): Promise<VaultEngine> {
  const home = mkdtempSync(join(tmpdir(), 'rigbox-vault-'));
  const removeHome = trackScratchDir(home);
  let server: VaultDevServer;
  try {
    server = await startVaultDevServer({ home, tls: options.tls === true });
  } catch (error) {
    removeHome();
    throw error;
  }
  const { engine, address, caCertPem, rootToken, admin } = server;
  const stop = async () => {
    await engine.stop();
    removeHome();
  };

  try {
    await admin('POST', 'sys/auth/approle', { type: 'approle' });
    await admin('PUT', `sys/policies/acl/${READER_POLICY}`, { policy: readerPolicyHcl });
    await admin('POST', `auth/approle/role/${READER_ROLE}`, {
      token_policies: [READER_POLICY],
      token_ttl: '1h',
    });
    const role = (await admin('GET', `auth/approle/role/${READER_ROLE}/role-id`)) as {
      data: { role_id: string };
    };

    return {
      address,
      rootToken,
      roleId: role.data.role_id,
      caCertPem,
      async secretId() {
        const res = (await admin('POST', `auth/approle/role/${READER_ROLE}/secret-id`)) as {
          data: { secret_id: string };
        };
        return res.data.secret_id;
      },
      output: () => engine.output(),
      async writeSecret(path, data) {
        const res = (await admin('POST', `secret/data/${path}`, { data })) as { data: { version: number } };
        return res.data.version;
      },
      async destroyVersions(path, versions) {
        await admin('POST', `secret/destroy/${path}`, { versions });
      },
      async deleteLatest(path) {
        await admin('DELETE', `secret/data/${path}`);
      },
      async seal() {
        await admin('PUT', 'sys/seal');
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
