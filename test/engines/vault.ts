import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type EngineProcess,
  spawnEngine,
  toolPath,
  trackScratchDir,
  waitUntilReady,
} from './engine-process.js';
import { freePort, isPortFree } from './ports.js';

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

interface AdminResponse {
  status: number;
  body: unknown;
}

function adminRequest(
  address: string,
  caCertPem: string | undefined,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<AdminResponse> {
  const url = new URL(`/v1/${path}`, address);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['X-Vault-Token'] = token;
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) });
      });
      res.on('error', reject);
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { method, headers, ca: caCertPem }, onResponse)
        : httpRequest(url, { method, headers }, onResponse);
    req.setTimeout(10_000, () => req.destroy(new Error(`Vault admin ${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// Vault's dev server puts its cluster listener on the API port + 1, so both must be free.
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (port < 65535 && (await isPortFree(port + 1))) return port;
  }
  throw new Error('found no two adjacent free ports on 127.0.0.1 for Vault');
}

interface StartedServer {
  engine: EngineProcess;
  address: string;
  caCertPem: string | undefined;
}

async function startServer(binary: string, rootToken: string, home: string, tls: boolean) {
  const port = await freePortPair();
  const listen = `127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The caller's Vault settings must not leak into the server; HOME is a throwaway so the dev
  // server's ~/.vault-token does not overwrite a developer's own token.
  for (const name of Object.keys(env)) if (name.startsWith('VAULT_')) delete env[name];
  Object.assign(env, { HOME: home, VAULT_DEV_ROOT_TOKEN_ID: rootToken, VAULT_DEV_LISTEN_ADDRESS: listen });
  const args = ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=${listen}`];
  if (tls) args.push('-dev-tls', `-dev-tls-cert-dir=${home}`);
  const engine = spawnEngine('vault', binary, args, env);
  const address = `${tls ? 'https' : 'http'}://${listen}`;
  let caCertPem: string | undefined;
  await waitUntilReady(engine, async () => {
    if (tls && caCertPem === undefined) caCertPem = readFileSync(join(home, 'vault-ca.pem'), 'utf8');
    const health = await adminRequest(address, caCertPem, 'GET', 'sys/health', undefined);
    return health.status === 200;
  });
  return { engine, address, caCertPem } satisfies StartedServer;
}

/**
 * Starts `.tools/bin/vault server -dev` on a free loopback port and seeds it: KV v2 at `secret/`
 * (checked), AppRole at `approle/`, the policy `rigbox-reader` and the role `rigbox`.
 */
export async function startVault(options: VaultEngineOptions = {}): Promise<VaultEngine> {
  const binary = toolPath('vault');
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), 'rigbox-vault-'));
  const removeHome = trackScratchDir(home);
  let started: StartedServer | undefined;
  let lastError: unknown;
  // Another process can take the chosen ports between the probe and Vault's bind; try again then.
  for (let attempt = 0; attempt < 3 && started === undefined; attempt++) {
    try {
      started = await startServer(binary, rootToken, home, options.tls === true);
    } catch (error) {
      lastError = error;
    }
  }
  if (started === undefined) {
    removeHome();
    throw lastError;
  }
  const { engine, address, caCertPem } = started;

  const admin = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await adminRequest(address, caCertPem, method, path, rootToken, body);
    if (res.status < 200 || res.status > 299) {
      throw new Error(`Vault admin ${method} /v1/${path} answered HTTP ${res.status}`);
    }
    return res.body;
  };
  const stop = async () => {
    await engine.stop();
    removeHome();
  };

  try {
    const mount = (await admin('GET', 'sys/mounts/secret')) as {
      type?: string;
      options?: { version?: string };
    };
    if (mount.type !== 'kv' || mount.options?.version !== '2') {
      throw new Error('the Vault dev server did not mount KV v2 at secret/');
    }
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
