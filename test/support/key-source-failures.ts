import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { KeySourceError, type KeySourceErrorKind } from '../../provider/src/key-sources/index.js';

/**
 * For the key-source suites: a canary key that must never show up in an error, and the check that
 * a read fails with the expected kind, keeping every text of the error for the final canary scan.
 */
export function keySourceFailures() {
  const canary = `sk-CANARY-${randomBytes(16).toString('hex')}`;
  const errorTexts: string[] = [];
  async function expectFailure(read: Promise<unknown>, kind: KeySourceErrorKind): Promise<KeySourceError> {
    const error = await read.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeySourceError);
    const failure = error as KeySourceError;
    errorTexts.push(failure.message, failure.stack ?? '', failure.reference, String(failure.cause ?? ''));
    expect(failure.kind, failure.message).toBe(kind);
    return failure;
  }
  return { canary, errorTexts, expectFailure };
}
