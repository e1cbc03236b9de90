import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { hashToken, newId, newToken } from '../ids.js';
import type { Storage, TokenRecord, User } from '../storage/types.js';

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

/** Resolves a bearer token to its user and token record, or throws 401. */
export async function authenticate(
  storage: Storage,
  request: FastifyRequest,
  kind: TokenRecord['kind'],
): Promise<{ user: User; token: TokenRecord }> {
  const tokenHash = bearerTokenHash(request);
  if (!tokenHash) {
    throw new ApiError(401, 'unauthenticated', 'missing bearer token: send Authorization: Bearer <token>');
  }
  const found = await storage.findToken(tokenHash);
  const expired = found?.token.expiresAt != null && Date.parse(found.token.expiresAt) <= Date.now();
  if (!found || found.token.kind !== kind || expired) {
    throw new ApiError(401, 'unauthenticated', 'invalid or expired token');
  }
  return found;
}
