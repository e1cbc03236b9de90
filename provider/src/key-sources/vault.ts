import { ApiTransport } from '../api-transport.js';
import { KeySourceError, type KeySourceErrorKind, NETWORK_ERROR_CODES } from './errors.js';
import type { KeySource } from './key-source.js';
import { describeRef, normalizeVaultRef, type VaultRef } from './reference.js';

/** How to reach and log in to Vault. One settings object is one login: keep it for the whole apply. */
export interface VaultSettings {
  /** e.g. `https://vault.example.com:8200`. */
  address: string;
  /** A Vault token; ignored when `approle` is set. */
  token?: string;
  /** Vault Enterprise / HCP namespace, sent as `X-Vault-Namespace` on every request, login included. */
  namespace?: string;
  /** PEM of the CA that signed Vault's certificate. @default the system's trusted CAs */
  caCertPem?: string;
  /** Log in with AppRole instead of a token. `mount` @default 'approle' */
  approle?: { roleId: string; secretId: string; mount?: string };
  /** Per-request deadline. @default 10000 */
  timeoutMs?: number;
  /** Replaces the provider's HTTP transport (and `caCertPem`); tests use it to watch which paths are requested. */
  fetch?: typeof fetch;
}

const defaultTimeoutMs = 10_000;

interface VaultResponse {
  status: number;
  /** Parsed JSON, or undefined for an empty or non-JSON body. Never put it in a message. */
  body: unknown;
}

/**
 * One HTTP exchange with Vault: a path under the address (`/v1/...`), answered with status and
 * text. The provider's keep-alive HTTP/1.1 transport by default (the one its API client uses:
 * it takes a CA and honours the proxy variables, and spares a plan that reads Vault metadata the
 * load of global fetch); `settings.fetch` when a test gives one.
 */
type VaultTransport = (
  path: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal },
) => Promise<{ status: number; text: string }>;

// One pool of connections per settings object, as there is one login: an apply reads several keys.
const pools = new WeakMap<VaultSettings, ApiTransport>();

function transportFor(settings: VaultSettings, address: string): VaultTransport {
  const given = settings.fetch;
  if (given !== undefined) {
    return async (path, init) => {
      const res = await given(`${address}${path}`, init);
      return { status: res.status, text: await res.text() };
    };
  }
  return (path, init) => {
    let pool = pools.get(settings);
    if (pool === undefined) {
      const tls = settings.caCertPem === undefined ? {} : { ca: settings.caCertPem };
      pool = new ApiTransport(new URL(address), settings.timeoutMs ?? defaultTimeoutMs, 4, tls);
      pools.set(settings, pool);
    }
    const exchange = pool.exchange(init.method, path, init.headers, init.body);
    // The deadline covers the whole exchange (the pool's own timeout is for a silent socket).
    return new Promise((resolve, reject) => {
      const { signal } = init;
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      exchange.then(
        (res) => {
          signal.removeEventListener('abort', onAbort);
          resolve(res);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function vaultErrors(body: unknown): string[] {
  if (!isRecord(body) || !Array.isArray(body.errors)) return [];
  return body.errors.filter((e): e is string => typeof e === 'string');
}

// Vault joins several reasons into one string ("2 errors occurred: * permission denied * invalid token").
const isInvalidToken = (body: unknown) => vaultErrors(body).some((e) => e.includes('invalid token'));

const connectTimeoutCodes = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

// fetch (a test's) wraps the socket error in `cause` (an AggregateError when several addresses
// were tried); the provider's transport rejects with the socket's own error, code on it.
function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; isRecord(e) && depth < 4; depth++) {
    if (typeof e.code === 'string') return e.code;
    if (Array.isArray(e.errors) && isRecord(e.errors[0]) && typeof e.errors[0].code === 'string') {
      return e.errors[0].code;
    }
    e = e.cause;
  }
  return undefined;
}

// One login per settings object: an apply reads several keys with the same provider config.
const approleTokens = new WeakMap<VaultSettings, Promise<string>>();

/** Reads one field of one KV v2 secret. */
export class VaultKeySource implements KeySource {
  private readonly ref: VaultRef;
  private readonly reference: string;
  private readonly address: string;
  private readonly transport: VaultTransport;

  constructor(
    ref: VaultRef,
    private readonly settings: VaultSettings,
  ) {
    this.ref = normalizeVaultRef(ref);
    this.reference = describeRef(this.ref);
    this.address = settings.address.replace(/\/+$/, '');
    this.transport = transportFor(settings, this.address);
  }

  describe(): string {
    return this.reference;
  }

  async readValue(): Promise<{ value: string; version: string }> {
    const { field, version } = this.ref;
    const query = version === undefined ? '' : `?version=${version}`;
    const res = await this.request('GET', this.apiPath('data'), query);
    const data = isRecord(res.body) && isRecord(res.body.data) ? res.body.data : undefined;
    const metadata = data !== undefined && isRecord(data.metadata) ? data.metadata : undefined;
    // KV v2 answers a deleted or destroyed version with its metadata and `data: null`, as 404 for
    // the latest version and as 200 for some pinned reads.
    if ((res.status === 200 || res.status === 404) && metadata !== undefined && data?.data === null) {
      throw this.versionGone(metadata.version, metadata.destroyed === true);
    }
    if (res.status !== 200) throw this.fail(res);
    if (data === undefined || !isRecord(data.data) || metadata === undefined) {
      throw this.error(
        'unknown',
        'Vault answered HTTP 200 without a KV v2 secret (is the mount KV version 2?)',
      );
    }
    // Own properties only: a field named like an Object.prototype member must not resolve to it.
    const raw = Object.hasOwn(data.data, field) ? data.data[field] : undefined;
    if (raw === undefined || raw === null) {
      throw this.error('field_missing', `the secret has no field "${field}"`);
    }
    return { value: typeof raw === 'string' ? raw : JSON.stringify(raw), version: String(metadata.version) };
  }

  async readVersion(): Promise<string> {
    const res = await this.request('GET', this.apiPath('metadata'), '');
    if (res.status !== 200) throw this.fail(res);
    const meta = isRecord(res.body) && isRecord(res.body.data) ? res.body.data : undefined;
    const current = meta?.current_version;
    if (meta === undefined || typeof current !== 'number') {
      throw this.error(
        'unknown',
        'Vault answered HTTP 200 without KV v2 metadata (is the mount KV version 2?)',
      );
    }
    const pinned = this.ref.version;
    if (pinned === undefined) {
      if (current < 1) throw this.error('not_found', 'the secret has no versions');
      return String(current);
    }
    const versions = isRecord(meta.versions) ? meta.versions : {};
    const entry = versions[String(pinned)];
    if (!isRecord(entry)) {
      throw this.error('not_found', `version ${pinned} does not exist (current version is ${current})`);
    }
    if (entry.destroyed === true || (typeof entry.deletion_time === 'string' && entry.deletion_time !== '')) {
      throw this.versionGone(pinned, entry.destroyed === true);
    }
    return String(pinned);
  }

  private apiPath(endpoint: 'data' | 'metadata'): string {
    return `${this.ref.mount}/${endpoint}/${this.ref.path}`;
  }

  private async request(method: string, apiPath: string, query: string): Promise<VaultResponse> {
    const token = await this.token();
    const res = await this.send(method, apiPath, query, { 'X-Vault-Token': token });
    // An AppRole token that expired must not stay cached for the next read.
    if (this.settings.approle !== undefined && res.status === 403 && isInvalidToken(res.body)) {
      approleTokens.delete(this.settings);
    }
    return res;
  }

  private token(): Promise<string> {
    const { approle, token } = this.settings;
    if (approle === undefined) {
      if (token === undefined || token === '') {
        return Promise.reject(
          this.error('auth_failed', 'no Vault token or AppRole credentials are configured'),
        );
      }
      return Promise.resolve(token);
    }
    let login = approleTokens.get(this.settings);
    if (login === undefined) {
      login = this.login(approle);
      approleTokens.set(this.settings, login);
      login.catch(() => approleTokens.delete(this.settings));
    }
    return login;
  }

  private async login(approle: NonNullable<VaultSettings['approle']>): Promise<string> {
    const mount = (approle.mount ?? 'approle').replace(/^\/+|\/+$/g, '');
    const res = await this.send(
      'POST',
      `auth/${mount}/login`,
      '',
      { 'Content-Type': 'application/json' },
      JSON.stringify({ role_id: approle.roleId, secret_id: approle.secretId }),
    );
    if (res.status === 200) {
      const auth = isRecord(res.body) && isRecord(res.body.auth) ? res.body.auth : undefined;
      if (typeof auth?.client_token === 'string') return auth.client_token;
      throw this.error('auth_failed', `AppRole login at auth/${mount} answered HTTP 200 without a token`);
    }
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      throw this.error('auth_failed', `AppRole login at auth/${mount} was refused (HTTP ${res.status})`);
    }
    throw this.fail(res, `AppRole login at auth/${mount}`);
  }

  private async send(
    method: string,
    apiPath: string,
    query: string,
    extraHeaders: Record<string, string>,
    body?: string,
  ): Promise<VaultResponse> {
    const encoded = apiPath.split('/').map(encodeURIComponent).join('/');
    const path = `/v1/${encoded}${query}`;
    const headers: Record<string, string> = { ...extraHeaders };
    if (this.settings.namespace !== undefined && this.settings.namespace !== '') {
      headers['X-Vault-Namespace'] = this.settings.namespace;
    }
    const timeoutMs = this.settings.timeoutMs ?? defaultTimeoutMs;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const { status, text } = await this.transport(path, {
        method,
        headers,
        signal,
        ...(body === undefined ? {} : { body }),
      });
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status, body: parsed };
    } catch (error) {
      if (signal.aborted) {
        throw this.error('timeout', `Vault did not answer within ${timeoutMs} ms`);
      }
      const code = errorCode(error);
      if (code !== undefined && connectTimeoutCodes.has(code)) {
        throw this.error('timeout', `connecting to Vault timed out (${code})`, error);
      }
      if (code !== undefined && NETWORK_ERROR_CODES.has(code)) {
        throw this.error('unreachable', `cannot reach Vault (${code})`, error);
      }
      if (code !== undefined && /CERT|SSL|TLS|VERIFY|ISSUER|SIGNATURE/i.test(code)) {
        throw this.error(
          'unreachable',
          `TLS connection to Vault failed (${code}); check the CA certificate`,
          error,
        );
      }
      throw this.error(
        'unreachable',
        `request to Vault failed${code === undefined ? '' : ` (${code})`}`,
        error,
      );
    }
  }

  /** Classifies a non-success answer by status; the body is only inspected, never quoted. */
  private fail(res: VaultResponse, what = 'Vault'): KeySourceError {
    const errors = vaultErrors(res.body);
    const status = `HTTP ${res.status}`;
    let kind: KeySourceErrorKind = 'unknown';
    let detail = `${what} answered ${status}`;
    if (res.status === 404) {
      kind = 'not_found';
      detail =
        this.ref.version === undefined
          ? `secret not found (${status}); check the mount and path`
          : `secret or its version ${this.ref.version} not found (${status}); check the mount, path and version`;
    } else if (res.status === 403 && isInvalidToken(res.body)) {
      kind = 'auth_failed';
      detail = `Vault refused the token as invalid or expired (${status})`;
    } else if (res.status === 403) {
      kind = 'permission_denied';
      detail = `permission denied (${status}); the token's policies do not allow reading this path`;
    } else if (res.status === 503 && errors.some((e) => e.includes('Vault is sealed'))) {
      kind = 'sealed';
      detail = `Vault is sealed (${status}); unseal it and retry`;
    } else if (res.status === 503) {
      kind = 'unreachable';
      detail = `Vault is unavailable (${status})`;
    } else if (res.status === 429) {
      kind = 'throttled';
      detail = `Vault's rate limit refused the request (${status}); retry later`;
    }
    return this.error(kind, detail);
  }

  private versionGone(version: unknown, destroyed: boolean): KeySourceError {
    const which = typeof version === 'number' ? `version ${version}` : 'the requested version';
    return this.error(
      'version_destroyed',
      `${which} has no value: it was ${destroyed ? 'destroyed' : 'deleted'}; write a new version or pin another one`,
    );
  }

  private error(kind: KeySourceErrorKind, detail: string, cause?: unknown): KeySourceError {
    return new KeySourceError(
      kind,
      this.reference,
      `Vault key source ${this.reference} at ${this.address}: ${detail}`,
      cause === undefined ? undefined : { cause },
    );
  }
}
