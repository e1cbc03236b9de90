import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { Keyring } from './keyring.js';
import { randomBytesPooled } from './random.js';

/**
 * Envelope encryption for API keys at rest: each record gets its own data key (DEK), the key is
 * sealed with the DEK, and the DEK is wrapped by the KEK. Both seals bind the record's identity as
 * additional authenticated data, so a ciphertext copied into another record does not open.
 * Rotating the KEK re-wraps only the small DEK, never touching the key ciphertext.
 */
export interface Envelope {
  /** iv | tag | ciphertext of the secret under the DEK, base64. */
  readonly ciphertext: string;
  /** iv | tag | ciphertext of the DEK under the KEK, base64. */
  readonly wrappedDek: string;
  readonly kekId: string;
}

/** Raised for any envelope that does not open; never carries key material. */
export class EnvelopeError extends Error {
  constructor(
    message: string,
    readonly recordId: string,
  ) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

function seal(key: Buffer, plaintext: Buffer, aad: string): string {
  const iv = randomBytesPooled(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

function open(key: Buffer, sealed: string, aad: string): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value too short');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
}

const dekAad = (recordId: string) => `rigbox/dek/v1/${recordId}`;
const dataAad = (recordId: string) => `rigbox/secret/v1/${recordId}`;

export class Envelopes {
  constructor(private readonly keyring: Keyring) {}

  /** The master keys configured now, as ids: whether an envelope opens can change when they do. */
  get kekIds(): readonly string[] {
    return this.keyring.ids;
  }

  seal(recordId: string, secret: string): Envelope {
    const dek = randomBytesPooled(32);
    try {
      const kek = this.keyring.primary;
      return {
        ciphertext: seal(dek, Buffer.from(secret, 'utf8'), dataAad(recordId)),
        wrappedDek: seal(kek.key, dek, dekAad(recordId)),
        kekId: kek.id,
      };
    } finally {
      dek.fill(0);
    }
  }

  open(recordId: string, envelope: Envelope): string {
    const dek = this.unwrap(recordId, envelope);
    try {
      return open(dek, envelope.ciphertext, dataAad(recordId)).toString('utf8');
    } catch {
      throw new EnvelopeError(`stored key for ${recordId} failed its integrity check`, recordId);
    } finally {
      dek.fill(0);
    }
  }

  /** The same envelope with its DEK wrapped by the primary KEK; undefined when it already is. */
  rewrap(recordId: string, envelope: Envelope): Envelope | undefined {
    const primary = this.keyring.primary;
    if (envelope.kekId === primary.id) return undefined;
    const dek = this.unwrap(recordId, envelope);
    try {
      return {
        ciphertext: envelope.ciphertext,
        wrappedDek: seal(primary.key, dek, dekAad(recordId)),
        kekId: primary.id,
      };
    } finally {
      dek.fill(0);
    }
  }

  private unwrap(recordId: string, envelope: Envelope): Buffer {
    const kek = this.keyring.find(envelope.kekId);
    if (!kek) {
      throw new EnvelopeError(
        `stored key for ${recordId} is wrapped by master key ${envelope.kekId}, which is not configured`,
        recordId,
      );
    }
    try {
      return open(kek.key, envelope.wrappedDek, dekAad(recordId));
    } catch {
      throw new EnvelopeError(`stored key for ${recordId} failed its integrity check`, recordId);
    }
  }
}
