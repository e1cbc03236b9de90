import { hash, randomBytes } from 'node:crypto';
import { randomBytesPooled } from './crypto/random.js';

let counter = 0;

/**
 * Ids that sort by creation time (time, then a per-process counter, then randomness), so the
 * audit trail orders by id on both backends without a database sequence.
 */
export function newId(prefix: string): string {
  counter = (counter + 1) % 0x1000000;
  const time = Date.now().toString(16).padStart(12, '0');
  return `${prefix}_${time}${counter.toString(16).padStart(6, '0')}${randomBytesPooled(5).toString('hex')}`;
}

/** Tokens are long random strings; a plain SHA-256 is enough to store them (no guessing). */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}
