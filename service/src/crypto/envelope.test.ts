import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EnvelopeError, Envelopes } from './envelope.js';
import { Keyring, kekId } from './keyring.js';

const ring = (...keys: Buffer[]) =>
  new Keyring(
    keys.map((key) => ({ id: kekId(key), key })),
    { description: 'test', file: undefined, generated: false },
  );

function flip(b64: string, at: number): string {
  const raw = Buffer.from(b64, 'base64');
  raw[at % raw.length]! ^= 0x01;
  return raw.toString('base64');
}

describe('envelope encryption', () => {
  const kek = randomBytes(32);
  const envelopes = new Envelopes(ring(kek));
  const secret = 'sk-ant-api03-CANARY-envelope';

  it('opens what it sealed, under a fresh data key each time', () => {
    const a = envelopes.seal('workspace:ws_1', secret);
    const b = envelopes.seal('workspace:ws_1', secret);
    expect(envelopes.open('workspace:ws_1', a)).toBe(secret);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(a.wrappedDek).not.toBe(b.wrappedDek);
    expect(`${a.ciphertext}${a.wrappedDek}`).not.toContain('CANARY');
  });

  it('refuses a flipped byte anywhere in the ciphertext or the wrapped key', () => {
    const e = envelopes.seal('workspace:ws_1', secret);
    for (const at of [0, 12, 20, 30, 40]) {
      expect(() => envelopes.open('workspace:ws_1', { ...e, ciphertext: flip(e.ciphertext, at) })).toThrow(
        EnvelopeError,
      );
      expect(() => envelopes.open('workspace:ws_1', { ...e, wrappedDek: flip(e.wrappedDek, at) })).toThrow(
        EnvelopeError,
      );
    }
  });

  it('refuses an envelope moved to another record', () => {
    const e = envelopes.seal('workspace:ws_1', secret);
    expect(() => envelopes.open('workspace:ws_2', e)).toThrow(/failed its integrity check/);
    expect(() => envelopes.open('defaults:usr_1', e)).toThrow(EnvelopeError);
  });

  it('re-wraps under a new primary key and still opens; the old key can then go', () => {
    const e = envelopes.seal('workspace:ws_1', secret);
    const next = randomBytes(32);
    const rotated = new Envelopes(ring(next, kek));
    const rewrapped = rotated.rewrap('workspace:ws_1', e);
    expect(rewrapped?.kekId).toBe(kekId(next));
    expect(rewrapped?.ciphertext).toBe(e.ciphertext);
    expect(rotated.rewrap('workspace:ws_1', rewrapped!)).toBeUndefined();
    expect(new Envelopes(ring(next)).open('workspace:ws_1', rewrapped!)).toBe(secret);
    expect(() => new Envelopes(ring(next)).open('workspace:ws_1', e)).toThrow(/not configured/);
  });
});
