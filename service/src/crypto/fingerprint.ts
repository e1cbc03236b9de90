import { createHmac } from 'node:crypto';

/**
 * A keyed one-way hash of an API key: stable for the same key (so Terraform can see that the key
 * changed out of band), useless without the server's fingerprint secret, and revealing no part of
 * the key.
 */
export class Fingerprinter {
  constructor(private readonly secret: Buffer) {}

  fingerprint(apiKey: string): string {
    const mac = createHmac('sha256', this.secret)
      .update('rigbox/api-key-fingerprint/v1\0')
      .update(apiKey, 'utf8');
    return `hmac-sha256:${mac.digest('base64url').slice(0, 32)}`;
  }
}
