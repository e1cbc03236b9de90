import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateDer, createServerCertificate } from './certificate.js';

describe('AutoMTLS server certificate', () => {
  it('is a valid self-signed ECDSA certificate for localhost that Node parses and verifies', () => {
    const cert = createServerCertificate();
    const x = new X509Certificate(cert.certPem);
    expect(x.subject).toContain('CN=localhost');
    expect(x.subjectAltName).toBe('DNS:localhost');
    expect(x.checkHost('localhost')).toBe('localhost');
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(Buffer.from(x.raw).equals(cert.der)).toBe(true);
    expect(x.keyUsage ?? []).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(Date.parse(x.validFrom)).toBeLessThan(Date.now());
    expect(Date.parse(x.validTo)).toBeGreaterThan(Date.now() + 3600_000);
  });

  it('is fresh every time', () => {
    expect(createServerCertificate().der.equals(createServerCertificate().der)).toBe(false);
  });

  it('reads back the DER of a PEM certificate, and refuses text without one', () => {
    const cert = createServerCertificate();
    expect(certificateDer(`some text\n${cert.certPem}`).equals(cert.der)).toBe(true);
    expect(() => certificateDer('not a certificate')).toThrow(/no PEM certificate/);
  });
});
