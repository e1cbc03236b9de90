import type { FastifyRequest } from 'fastify';
import { ApiError, RetryLaterError } from '../errors.js';
import { hashToken, newId, newToken } from '../ids.js';
import type { Storage, TokenRecord, User } from '../storage/types.js';
import type { AuthFailureLimiter } from './failures.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed authentication per client address (set by buildApp). */
    authFailures: AuthFailureLimiter;
  }
}

export const USER_TOKEN_PREFIX = 'rbx';

/** Creates the user if new and a fresh user token; returns the token once, it is stored only as a hash. */
export async function createUserToken(
  storage: Storage,
  userName: string,
): Promise<{ user: User; token: string }> {
  const now = new Date().toISOString();
  const user = await storage.ensureUser(userName, now);
  const token = newToken(USER_TOKEN_PREFIX);
  const record: TokenRecord = {
    id: newId('tok'),
    userId: user.id,
    tokenHash: hashToken(token),
    kind: 'user',
    workspaceId: null,
    expiresAt: null,
    createdAt: now,
  };
  await storage.insertToken(record);
  return { user, token };
}

export const USER_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

const tokenHashes = new WeakMap<FastifyRequest, string | null>();

/** The hash of the request's bearer token, computed once (the rate limiter and auth both need it). */
export function bearerTokenHash(request: FastifyRequest): string | null {
  let found = tokenHashes.get(request);
  if (found === undefined) {
    const token = bearerToken(request);
    found = token ? hashToken(token) : null;
    tokenHashes.set(request, found);
  }
  return found;
}

type FoundToken = { token: TokenRecord; user: User };

/**
 * Tokens found in the last TOKEN_CACHE_MS, by hash. tofu refreshing hundreds of resources (or an
 * SDK in a loop) presents one token per request; the lookup was the largest cost of a config GET.
 * Only found tokens are kept (an unknown token always reaches storage), expiry is checked on every
 * use, and nothing mutable is read from the entry: the user's plan is read fresh where it matters.
 * A token deleted or marked used through this instance (storage.tokenChanges) drops every entry
 * found before: it binds this instance's next request at once. Through another instance (or
 * another process on the SQLite file) it may pass here for up to TOKEN_CACHE_MS; the only such
 * changes are a workspace's runtime and gateway tokens deleted with it (which then find no
 * workspace) and a runtime token used (whose one use is decided by storage, atomically).
 */
export const TOKEN_CACHE_MS = 2_000;
const TOKEN_CACHE_MAX = 10_000;

export class TokenCache {
  private readonly entries = new Map<string, { found: FoundToken; at: number; changes: number }>();
  constructor(
    private readonly storage: Storage,
    private readonly now: () => number = Date.now,
  ) {}

  async find(tokenHash: string): Promise<FoundToken | undefined> {
    const hit = this.entries.get(tokenHash);
    // Taken before the lookup: a change made while it is in flight drops what it finds.
    const changes = this.storage.tokenChanges;
    if (hit && hit.changes === changes && this.now() - hit.at < TOKEN_CACHE_MS) return hit.found;
    this.entries.delete(tokenHash);
    const found = await this.storage.findToken(tokenHash);
    if (found) {
      if (this.entries.size >= TOKEN_CACHE_MAX) {
        // Maps iterate in insertion order: the first key is the oldest entry.
        this.entries.delete(this.entries.keys().next().value as string);
      }
      this.entries.set(tokenHash, { found, at: this.now(), changes });
    }
    return found;
  }
}

/** One cache per storage (an app or a test harness each open their own). */
const caches = new WeakMap<Storage, TokenCache>();
function tokenCache(storage: Storage): TokenCache {
  let cache = caches.get(storage);
  if (!cache) {
    cache = new TokenCache(storage);
    caches.set(storage, cache);
  }
  return cache;
}

/** Throws 429 when the request's address has failed authentication too often in this window. */
export function refuseFailingAddress(request: FastifyRequest): void {
  const retryAfter = request.server.authFailures.retryAfter(request.ip);
  if (retryAfter !== undefined) {
    throw new RetryLaterError(
      'too_many_failed_auth',
      'too many failed authentication attempts from this address; retry later',
      retryAfter,
    );
  }
}

export const RUNTIME_TOKEN_USED_MESSAGE =
  'this runtime token was already used: it fetches the env once, at process start; start the process again with `rigbox exec`';

/** Resolves a bearer token to its user and token record, or throws 401 (429 for an address that keeps failing). */
export async function authenticate(
  storage: Storage,
  request: FastifyRequest,
  kind: TokenRecord['kind'],
): Promise<FoundToken> {
  const tokenHash = bearerTokenHash(request);
  if (!tokenHash) {
    throw new ApiError(401, 'unauthenticated', 'missing bearer token: send Authorization: Bearer <token>');
  }
  refuseFailingAddress(request);
  const found = await tokenCache(storage).find(tokenHash);
  const expired = found?.token.expiresAt != null && Date.parse(found.token.expiresAt) <= Date.now();
  if (!found || found.token.kind !== kind || expired) {
    request.server.authFailures.fail(request.ip);
    if (kind === 'runtime' && found?.token.kind === 'runtime_used') {
      throw new ApiError(401, 'runtime_token_used', RUNTIME_TOKEN_USED_MESSAGE);
    }
    throw new ApiError(401, 'unauthenticated', 'invalid or expired token');
  }
  return found;
}
