import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError } from '../errors.js';
import type { PageKey } from '../storage/types.js';

/**
 * Keyset paging for every list that grows with an account: `limit` and an opaque `cursor` in the
 * query, `next_cursor` in the body and a `Link: <...>; rel="next"` header in the answer.
 *
 * A cursor names the sort key of the last item of the page it came with, never an offset, so a page
 * costs the same however deep it is, and items inserted or deleted meanwhile neither shift nor repeat
 * the items after it. It is bound to the list it came from (a scope such as the user and the list's
 * name) and carries a check value: a cursor that was edited, truncated or taken to another list is a
 * 400 naming `cursor`. The check is a digest, not a keyed MAC, on purpose: every page query applies
 * the caller's ownership again, so a forged cursor can only move the caller within their own list,
 * and cursors stay valid across restarts and across instances without a shared secret.
 */

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;
/** Longer than any cursor we hand out (two keys of at most MAX_KEY_LENGTH, encoded). */
export const MAX_CURSOR_LENGTH = 1024;
const MAX_KEY_LENGTH = 256;
const VERSION = 1;
const TAG_BYTES = 12;

export const PageLimit = z.coerce
  .number()
  .int()
  .min(1)
  .max(MAX_PAGE_LIMIT)
  .default(DEFAULT_PAGE_LIMIT)
  .describe(`Items per page, 1 to ${MAX_PAGE_LIMIT} (default ${DEFAULT_PAGE_LIMIT}).`);

export const PageCursor = z
  .string()
  .min(1)
  .max(MAX_CURSOR_LENGTH)
  .regex(/^[A-Za-z0-9_-]+$/, 'cursor must be a next_cursor exactly as a previous page gave it')
  .describe(
    'Where to continue: the `next_cursor` of the previous page, unchanged. Absent: the first page. Opaque; bound to this list.',
  );

/** The paging fields of a list's query string; spread into its `z.strictObject`. */
export const pageQueryFields = { limit: PageLimit, cursor: PageCursor.optional() };

/** The paging field of a list's answer; spread into its `z.object`. */
export const pageBodyFields = {
  next_cursor: z
    .string()
    .nullable()
    .describe(
      'Pass as `cursor` to get the next page; null on the last page. Also sent as a `Link: <...>; rel="next"` header.',
    ),
};

const tagOf = (scope: string, payload: Buffer) =>
  createHash('sha256')
    .update(`rigbox.cursor.v${VERSION}\0${scope}\0`)
    .update(payload)
    .digest()
    .subarray(0, TAG_BYTES);

/** The cursor that continues `scope` after the item whose sort key is `key`. */
export function encodeCursor(scope: string, key: PageKey): string {
  const payload = Buffer.from(JSON.stringify(key), 'utf8');
  return Buffer.concat([Buffer.of(VERSION), tagOf(scope, payload), payload]).toString('base64url');
}

const invalidCursor = () =>
  new ApiError(
    400,
    'invalid_cursor',
    'cursor is not a next_cursor this list gave out (edited, truncated or from another list); drop it to start from the first page',
    'cursor',
  );

/** The sort key a cursor of `scope` holds, with `arity` parts; a 400 naming `cursor` for anything else. */
export function decodeCursor(scope: string, cursor: string, arity: number): string[] {
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
  const bytes = Buffer.from(cursor, 'base64url');
  // Base64url decoding skips what it cannot read; only the canonical spelling is ours.
  if (bytes.toString('base64url') !== cursor || bytes.length <= 1 + TAG_BYTES || bytes[0] !== VERSION) {
    throw invalidCursor();
  }
  const payload = bytes.subarray(1 + TAG_BYTES);
  if (!timingSafeEqual(bytes.subarray(1, 1 + TAG_BYTES), tagOf(scope, payload))) throw invalidCursor();
  let key: unknown;
  try {
    key = JSON.parse(payload.toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (
    !Array.isArray(key) ||
    key.length !== arity ||
    !key.every((part) => typeof part === 'string' && part.length <= MAX_KEY_LENGTH)
  ) {
    throw invalidCursor();
  }
  return key as string[];
}

/**
 * Finishes a page: the `next_cursor` for its body (null on the last page), and the same as a
 * `Link` header holding this request's URL with the cursor replaced (relative, RFC 8288).
 */
export function nextPage(
  request: FastifyRequest,
  reply: FastifyReply,
  scope: string,
  next: PageKey | null,
): string | null {
  if (next === null) return null;
  const cursor = encodeCursor(scope, next);
  const url = new URL(request.url, 'http://rigbox.invalid');
  url.searchParams.set('cursor', cursor);
  reply.header('link', `<${url.pathname}${url.search}>; rel="next"`);
  return cursor;
}
