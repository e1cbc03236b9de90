import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import {
  type EngineProcess,
  type SpawnEngineOptions,
  spawnEngine,
  toolPath,
  waitUntilReady,
} from './engine-process.js';
import { freePort, isPortFree } from './ports.js';

/** A real `vault server -dev` on loopback: in memory, unsealed, KV v2 mounted at `secret/`. */
export interface VaultDevServer {
  /** `http://127.0.0.1:<port>` (or `https://` with `tls`). */
  readonly address: string;
  readonly rootToken: string;
  /** The CA that signed the server certificate when started with `tls`, else undefined. */
  readonly caCertPem: string | undefined;
  readonly engine: EngineProcess;
  /** A request with the root token; throws unless the answer is 2xx. Resolves with the JSON body. */
  admin(method: string, path: string, body?: unknown): Promise<unknown>;
}

export interface VaultDevServerOptions extends Pick<SpawnEngineOptions, 'logFile' | 'detached'> {
  /** The server's HOME (it writes ~/.vault-token there) and, with `tls`, its certificates. */
  readonly home: string;
  /** Serve HTTPS with a CA that Vault generates (`-dev-tls`). @default false */
  readonly tls?: boolean;
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
    const onResponse = (res: IncomingMessage) => {
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

async function startServer(binary: string, rootToken: string, options: VaultDevServerOptions) {
  const { home } = options;
  const tls = options.tls === true;
  const port = await freePortPair();
  const listen = `127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The caller's Vault settings must not leak into the server; HOME is a throwaway so the dev
  // server's ~/.vault-token does not overwrite a developer's own token.
  for (const name of Object.keys(env)) if (name.startsWith('VAULT_')) delete env[name];
  Object.assign(env, { HOME: home, VAULT_DEV_ROOT_TOKEN_ID: rootToken, VAULT_DEV_LISTEN_ADDRESS: listen });
  const args = ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=${listen}`];
  if (tls) args.push('-dev-tls', `-dev-tls-cert-dir=${home}`);
  const spawnOptions: SpawnEngineOptions = {
    ...(options.logFile === undefined ? {} : { logFile: options.logFile }),
    ...(options.detached === undefined ? {} : { detached: options.detached }),
  };
  const engine = spawnEngine('vault', binary, args, env, spawnOptions);
  const address = `${tls ? 'https' : 'http'}://${listen}`;
  let caCertPem: string | undefined;
  await waitUntilReady(engine, async () => {
    if (tls && caCertPem === undefined) caCertPem = readFileSync(join(home, 'vault-ca.pem'), 'utf8');
    const health = await adminRequest(address, caCertPem, 'GET', 'sys/health', undefined);
    return health.status === 200;
  });
  return { engine, address, caCertPem };
}

/**
 * Starts `.tools/bin/vault server -dev` on a free loopback port and waits until it is healthy.
 * Checks that KV v2 is mounted at `secret/`.
 */
export async function startVaultDevServer(options: VaultDevServerOptions): Promise<VaultDevServer> {
  const binary = toolPath('vault');
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  let started: Awaited<ReturnType<typeof startServer>> | undefined;
  let lastError: unknown;
  // Another process can take the chosen ports between the probe and Vault's bind; try again then.
  for (let attempt = 0; attempt < 3 && started === undefined; attempt++) {
    try {
      started = await startServer(binary, rootToken, options);
    } catch (error) {
      lastError = error;
    }
  }
  if (started === undefined) throw lastError;
  const { engine, address, caCertPem } = started;
  const admin = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await adminRequest(address, caCertPem, method, path, rootToken, body);
    if (res.status < 200 || res.status > 299) {
      throw new Error(`Vault admin ${method} /v1/${path} answered HTTP ${res.status}`);
    }
    return res.body;
  };
  try {
    const mount = (await admin('GET', 'sys/mounts/secret')) as {
      type?: string;
      options?: { version?: string };
    };
    if (mount.type !== 'kv' || mount.options?.version !== '2') {
      throw new Error('the Vault dev server did not mount KV v2 at secret/');
    }
  } catch (error) {
    await engine.stop();
    throw error;
  }
  return { address, rootToken, caCertPem, engine, admin };
}
