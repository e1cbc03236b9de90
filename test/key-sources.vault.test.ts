import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KeySourceError,
  type KeySourceRef,
  openKeySource,
  type VaultSettings,
} from '../provider/src/key-sources/index.js';
import { freePort } from './engines/ports.js';
import { startVault, type VaultEngine } from './engines/vault.js';
import { keySourceFailures } from './support/key-source-failures.js';

// A key that must never show up in an error message or in Vault's own output.
const { canary, errorTexts, expectFailure } = keySourceFailures();

interface RecordedRequest {
  method: string;
  path: string;
  headers: Headers;
}

/** A fetch that records what our code asked Vault for, then really asks. */
function recordingFetch(): { fetch: typeof fetch; requests: RecordedRequest[] } {
  const requests: RecordedRequest[] = [];
  const wrapped: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    requests.push({ method: init?.method ?? 'GET', path: url.pathname, headers: new Headers(init?.headers) });
    return fetch(input, init);
  };
  return { fetch: wrapped, requests };
}

const vaultRef = (path: string, field = 'api_key', version?: number): KeySourceRef => ({
  kind: 'vault',
  mount: 'secret',
  path,
  field,
  ...(version === undefined ? {} : { version }),
});

describe('Vault key source against a real Vault dev server', () => {
  let vault: VaultEngine;
  let byToken: VaultSettings;

  beforeAll(async () => {
    vault = await startVault();
    byToken = { address: vault.address, token: vault.rootToken };
    await vault.writeSecret('app/openai', { api_key: canary, org: 'rigbox' });
    await vault.writeSecret('denied/openai', { api_key: canary });
  });

  afterAll(async () => {
    await vault?.stop();
    for (const text of errorTexts) expect(text).not.toContain(canary);
    expect(vault.output()).not.toContain(canary);
  });

  it('reads a field with a token, with the version it came from', async () => {
    const source = openKeySource(vaultRef('app/openai'), { vault: byToken });
    expect(source.describe()).toBe('vault://secret/app/openai#api_key');
    await expect(source.readValue()).resolves.toEqual({ value: canary, version: '1' });
  });

  it('logs in with AppRole once per settings object and reads with that token', async () => {
    const { fetch, requests } = recordingFetch();
    const settings: VaultSettings = {
      address: vault.address,
      approle: { roleId: vault.roleId, secretId: await vault.secretId() },
      fetch,
    };
    const source = openKeySource(vaultRef('app/openai'), { vault: settings });
    await expect(source.readValue()).resolves.toEqual({ value: canary, version: '1' });
    await expect(
      openKeySource(vaultRef('app/openai', 'org'), { vault: settings }).readValue(),
    ).resolves.toEqual({
      value: 'rigbox',
      version: '1',
    });
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1/auth/approle/login',
      'GET /v1/secret/data/app/openai',
      'GET /v1/secret/data/app/openai',
    ]);
    expect(requests[1]?.headers.get('X-Vault-Token')).not.toBe(vault.rootToken);
  });

  it('reads only metadata for readVersion, never the data endpoint', async () => {
    const { fetch, requests } = recordingFetch();
    const latest = openKeySource(vaultRef('app/openai'), { vault: { ...byToken, fetch } });
    const pinned = openKeySource(vaultRef('app/openai', 'api_key', 1), { vault: { ...byToken, fetch } });
    await expect(latest.readVersion()).resolves.toBe('1');
    await expect(pinned.readVersion()).resolves.toBe('1');
    expect(requests.map((r) => r.path)).toEqual([
      '/v1/secret/metadata/app/openai',
      '/v1/secret/metadata/app/openai',
    ]);
  });

  it('reads a pinned version while the latest moves on, and a rotation bumps readVersion', async () => {
    await vault.writeSecret('app/rotating', { api_key: 'first' });
    const latest = openKeySource(vaultRef('app/rotating'), { vault: byToken });
    const pinned = openKeySource(vaultRef('app/rotating', 'api_key', 1), { vault: byToken });
    await expect(latest.readVersion()).resolves.toBe('1');

    await vault.writeSecret('app/rotating', { api_key: 'second' });

    await expect(latest.readVersion()).resolves.toBe('2');
    await expect(latest.readValue()).resolves.toEqual({ value: 'second', version: '2' });
    await expect(pinned.readVersion()).resolves.toBe('1');
    await expect(pinned.readValue()).resolves.toEqual({ value: 'first', version: '1' });
  });

  it('sends X-Vault-Namespace on login and reads, and classifies whatever Vault OSS answers', async () => {
    const { fetch, requests } = recordingFetch();
    const settings: VaultSettings = {
      address: vault.address,
      namespace: 'team-a',
      approle: { roleId: vault.roleId, secretId: await vault.secretId() },
      fetch,
    };
    const source = openKeySource(vaultRef('app/openai'), { vault: settings });
    // Vault OSS has no namespaces; it may ignore the header or refuse it. Either is fine here as
    // long as the outcome is a value or a classified KeySourceError, not a crash.
    for (const read of [() => source.readValue(), () => source.readVersion()]) {
      const outcome = await read().then(
        (ok) => ok,
        (e: unknown) => e,
      );
      if (outcome instanceof Error) {
        expect(outcome).toBeInstanceOf(KeySourceError);
        errorTexts.push(outcome.message);
      }
    }
    expect(requests.length).toBeGreaterThanOrEqual(2);
    for (const r of requests) expect(r.headers.get('X-Vault-Namespace'), r.path).toBe('team-a');
  });

  it('reports a missing secret as not_found, from readValue and readVersion', async () => {
    const source = openKeySource(vaultRef('app/nothing-here'), { vault: byToken });
    const error = await expectFailure(source.readValue(), 'not_found');
    expect(error.message).toContain('vault://secret/app/nothing-here#api_key');
    expect(error.message).toContain(vault.address);
    expect(error.message).toContain('HTTP 404');
    await expectFailure(source.readVersion(), 'not_found');
    await expectFailure(
      openKeySource(vaultRef('app/openai', 'api_key', 7), { vault: byToken }).readVersion(),
      'not_found',
    );
  });

  it('reports a missing field as field_missing, naming the field and not the value', async () => {
    const error = await expectFailure(
      openKeySource(vaultRef('app/openai', 'anthropic_key'), { vault: byToken }).readValue(),
      'field_missing',
    );
    expect(error.message).toContain('"anthropic_key"');
    // A field named like an Object.prototype member is still just a missing field.
    await expectFailure(
      openKeySource(vaultRef('app/openai', 'constructor'), { vault: byToken }).readValue(),
      'field_missing',
    );
  });

  it('reports destroyed and deleted versions as version_destroyed', async () => {
    await vault.writeSecret('app/burnt', { api_key: canary });
    await vault.writeSecret('app/burnt', { api_key: canary });
    await vault.destroyVersions('app/burnt', [1]);
    const destroyed = openKeySource(vaultRef('app/burnt', 'api_key', 1), { vault: byToken });
    expect((await expectFailure(destroyed.readValue(), 'version_destroyed')).message).toContain('destroyed');
    await expectFailure(destroyed.readVersion(), 'version_destroyed');

    await vault.deleteLatest('app/burnt');
    const latest = openKeySource(vaultRef('app/burnt'), { vault: byToken });
    expect((await expectFailure(latest.readValue(), 'version_destroyed')).message).toContain('deleted');
  });

  it('reports a path the policy denies as permission_denied (AppRole token)', async () => {
    const settings: VaultSettings = {
      address: vault.address,
      approle: { roleId: vault.roleId, secretId: await vault.secretId() },
    };
    const source = openKeySource(vaultRef('denied/openai'), { vault: settings });
    expect((await expectFailure(source.readValue(), 'permission_denied')).message).toContain('HTTP 403');
    await expectFailure(source.readVersion(), 'permission_denied');
  });

  it('reports a refused login or a bad token as auth_failed, without echoing either', async () => {
    const badSecretId = `bad-${randomBytes(8).toString('hex')}`;
    const login = openKeySource(vaultRef('app/openai'), {
      vault: { address: vault.address, approle: { roleId: vault.roleId, secretId: badSecretId } },
    });
    const refused = await expectFailure(login.readValue(), 'auth_failed');
    expect(refused.message).not.toContain(badSecretId);

    const badToken = `hvs.${randomBytes(8).toString('hex')}`;
    const wrong = await expectFailure(
      openKeySource(vaultRef('app/openai'), {
        vault: { address: vault.address, token: badToken },
      }).readValue(),
      'auth_failed',
    );
    expect(wrong.message).not.toContain(badToken);
    expect(wrong.message).not.toContain(vault.rootToken);
  });
});

describe('Vault key source when Vault cannot answer', () => {
  let silent: Server;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    // Accepts connections and never answers: what a hung Vault or a black-holing proxy looks like.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('reports a closed port as unreachable', async () => {
    const address = `http://127.0.0.1:${await freePort()}`;
    const source = openKeySource(vaultRef('app/openai'), { vault: { address, token: 'unused' } });
    const error = await expectFailure(source.readValue(), 'unreachable');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain(address);
    await expectFailure(source.readVersion(), 'unreachable');
  });

  it('gives up after timeoutMs on a server that never answers', async () => {
    const port = (silent.address() as { port: number }).port;
    const settings: VaultSettings = { address: `http://127.0.0.1:${port}`, token: 'unused', timeoutMs: 300 };
    const started = Date.now();
    const error = await expectFailure(
      openKeySource(vaultRef('app/openai'), { vault: settings }).readValue(),
      'timeout',
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error.message).toContain('300 ms');
    const login = openKeySource(vaultRef('app/openai'), {
      vault: { ...settings, token: undefined, approle: { roleId: 'r', secretId: 's' } },
    });
    await expectFailure(login.readVersion(), 'timeout');
  });
});

describe('Vault key source over TLS, then sealed (a dedicated Vault)', () => {
  let vault: VaultEngine;

  beforeAll(async () => {
    vault = await startVault({ tls: true });
    await vault.writeSecret('app/openai', { api_key: canary });
  });

  afterAll(async () => {
    await vault?.stop();
    for (const text of errorTexts) expect(text).not.toContain(canary);
    expect(vault.output()).not.toContain(canary);
  });

  it('trusts the given CA certificate', async () => {
    expect(vault.address.startsWith('https://')).toBe(true);
    const source = openKeySource(vaultRef('app/openai'), {
      vault: { address: vault.address, token: vault.rootToken, caCertPem: vault.caCertPem },
    });
    await expect(source.readValue()).resolves.toEqual({ value: canary, version: '1' });
    await expect(source.readVersion()).resolves.toBe('1');
  });

  it('refuses a server certificate it cannot verify', async () => {
    const source = openKeySource(vaultRef('app/openai'), {
      vault: { address: vault.address, token: vault.rootToken },
    });
    expect((await expectFailure(source.readValue(), 'unreachable')).message).toMatch(/TLS|CERT/);
  });

  it('reports a sealed Vault as sealed, for reads, metadata and AppRole login', async () => {
    const secretId = await vault.secretId();
    await vault.seal();
    const withCa = { address: vault.address, caCertPem: vault.caCertPem };
    const byToken = openKeySource(vaultRef('app/openai'), { vault: { ...withCa, token: vault.rootToken } });
    expect((await expectFailure(byToken.readValue(), 'sealed')).message).toContain('HTTP 503');
    await expectFailure(byToken.readVersion(), 'sealed');
    const byAppRole = openKeySource(vaultRef('app/openai'), {
      vault: { ...withCa, approle: { roleId: vault.roleId, secretId } },
    });
    await expectFailure(byAppRole.readValue(), 'sealed');
  });
});
