import http2 from 'node:http2';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BROKER_START_STREAM, HEALTH_CHECK } from '../proto/messages.js';
import { decode, encode } from '../proto/protobuf.js';
import { createServerCertificate } from './certificate.js';
import { createGrpcServer as createOwnGrpcServer } from './grpc.js';
import { type GrpcServerOptions, MAX_CONCURRENT_STREAMS, MAX_REQUEST_BYTES } from './grpc-common.js';
import { createGrpcServer as createNodeGrpcServer } from './grpc-node.js';

// The gRPC surface, the same for both HTTP/2 layers that TFPLUGIN_WIRE chooses between.
const WIRES: [string, (options: GrpcServerOptions) => net.Server][] = [
  ['own', createOwnGrpcServer],
  ['node', createNodeGrpcServer],
];

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((ok) => s.close(() => ok()))));
});

async function listen(server: net.Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

interface Answer {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One request with node's own HTTP/2 client. */
function call(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  return new Promise<Answer>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ...headers });
    const chunks: Buffer[] = [];
    let got: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => {
      got = h;
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers: got, trailers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    req.end(body);
  });
}

const grpcFrame = (message: Buffer) => {
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, 5);
  return framed;
};
const grpcCall = (session: http2.ClientHttp2Session, path: string, message: Buffer) =>
  call(session, { ':path': path, 'content-type': 'application/grpc', te: 'trailers' }, grpcFrame(message));

describe.each(WIRES)('gRPC server on the %s HTTP/2 layer', (_wire, createGrpcServer) => {
  it('answers unary calls with headers, one message and trailers; unknown methods with status 12', async () => {
    const seen: unknown[] = [];
    const answered: string[] = [];
    const url = await listen(
      createGrpcServer({
        unary: new Map([
          [
            HEALTH_CHECK.path,
            {
              method: HEALTH_CHECK,
              handler: async (req) => {
                seen.push(req);
                return { status: 1 };
              },
              afterAnswer: () => answered.push('health'),
            },
          ],
        ]),
        heldStreams: new Set(),
        onError: () => {},
        maxRequestBytes: 1024,
      }),
    );
    const session = http2.connect(url);
    try {
      // Terraform-sized requests are accepted: what Go providers take (256 MiB).
      expect(MAX_REQUEST_BYTES).toBe(256 * 1024 * 1024);
      await new Promise((ok) => session.once('remoteSettings', ok));
      expect(session.remoteSettings.maxConcurrentStreams).toBe(MAX_CONCURRENT_STREAMS);
      const ok = await grpcCall(
        session,
        HEALTH_CHECK.path,
        encode(HEALTH_CHECK.request, { service: 'plugin' }),
      );
      expect(ok.headers[':status']).toBe(200);
      expect(ok.headers['content-type']).toBe('application/grpc');
      expect(ok.trailers['grpc-status']).toBe('0');
      expect(ok.body.readUInt32BE(1)).toBe(ok.body.length - 5);
      expect(decode(HEALTH_CHECK.response, ok.body.subarray(5))).toEqual({ status: 1 });
      expect(seen).toEqual([{ service: 'plugin' }]);
      expect(answered).toEqual(['health']);

      const huge = await grpcCall(session, HEALTH_CHECK.path, Buffer.alloc(2048));
      expect(huge.headers['grpc-status']).toBe('8');
      // A length prefix that does not match the body is refused, not decoded from what came.
      const framed = Buffer.alloc(5 + 10);
      framed.writeUInt32BE(20, 1);
      const truncated = await call(
        session,
        { ':path': HEALTH_CHECK.path, 'content-type': 'application/grpc' },
        framed,
      );
      expect(truncated.headers['grpc-status']).toBe('13');
      expect(seen).toHaveLength(1);

      const unknown = await grpcCall(session, '/no.Such/Method', Buffer.alloc(0));
      expect(unknown.headers['grpc-status']).toBe('12');
      expect(decodeURIComponent(String(unknown.headers['grpc-message']))).toBe(
        'unknown method /no.Such/Method',
      );
    } finally {
      session.close();
    }
  });

  it('answers a failing handler with status 13 and logs it; answers many concurrent calls', async () => {
    const errors: string[] = [];
    const url = await listen(
      createGrpcServer({
        unary: new Map([
          [
            HEALTH_CHECK.path,
            {
              method: HEALTH_CHECK,
              handler: async (req) => {
                if (req.service === 'boom') throw new Error('boom');
                return { status: Number(String(req.service).slice(1)) };
              },
            },
          ],
        ]),
        heldStreams: new Set(),
        onError: (path, err) => errors.push(`${path}: ${(err as Error).message}`),
      }),
    );
    const session = http2.connect(url);
    try {
      const failed = await grpcCall(
        session,
        HEALTH_CHECK.path,
        encode(HEALTH_CHECK.request, { service: 'boom' }),
      );
      expect(failed.headers['grpc-status']).toBe('13');
      expect(decodeURIComponent(String(failed.headers['grpc-message']))).toBe('internal error');
      expect(errors).toEqual([`${HEALTH_CHECK.path}: boom`]);
      // More than the stream limit at once: the client queues, every call is answered.
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          grpcCall(session, HEALTH_CHECK.path, encode(HEALTH_CHECK.request, { service: `s${i % 3}` })),
        ),
      );
      answers.forEach((a, i) => {
        expect(a.trailers['grpc-status']).toBe('0');
        expect(decode(HEALTH_CHECK.response, a.body.subarray(5)).status ?? 0).toBe(i % 3);
      });
    } finally {
      session.close();
    }
  });

  it('holds the broker stream open beside unary calls, and ends it with status 0 when the client does', async () => {
    const url = await listen(
      createGrpcServer({
        unary: new Map([[HEALTH_CHECK.path, { method: HEALTH_CHECK, handler: async () => ({ status: 1 }) }]]),
        heldStreams: new Set([BROKER_START_STREAM]),
        onError: () => {},
      }),
    );
    const session = http2.connect(url);
    try {
      const broker = session.request({
        ':method': 'POST',
        ':path': BROKER_START_STREAM,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const headers = await new Promise<http2.IncomingHttpHeaders>((ok) => broker.once('response', ok));
      expect(headers[':status']).toBe(200);
      let ended = false;
      let trailers: http2.IncomingHttpHeaders = {};
      broker.on('trailers', (t) => {
        trailers = t;
      });
      const done = new Promise<void>((ok) =>
        broker.on('end', () => {
          ended = true;
          ok();
        }),
      );
      broker.resume();
      // A message on the stream is read and dropped; the stream stays open across unary calls.
      broker.write(grpcFrame(Buffer.from([0x08, 0x01])));
      for (let i = 0; i < 3; i++) {
        const health = await grpcCall(session, HEALTH_CHECK.path, Buffer.alloc(0));
        expect(health.trailers['grpc-status']).toBe('0');
      }
      expect(ended).toBe(false);
      broker.end();
      await done;
      expect(trailers['grpc-status']).toBe('0');
    } finally {
      session.close();
    }
  });

  it('under TLS serves only the client certificate it was given (AutoMTLS), refusing others and none', async () => {
    const server = createServerCertificate();
    const client = createServerCertificate();
    const stranger = createServerCertificate();
    const refusals: string[] = [];
    const url = await listen(
      createGrpcServer({
        tls: { certPem: server.certPem, keyPem: server.keyPem, clientCertPem: client.certPem },
        unary: new Map([[HEALTH_CHECK.path, { method: HEALTH_CHECK, handler: async () => ({ status: 1 }) }]]),
        heldStreams: new Set(),
        onError: (_path, err) => refusals.push((err as Error).message),
      }),
    );
    const https = url.replace('http:', 'https:');
    const attempt = async (cert?: { certPem: string; keyPem: string }, alpn = ['h2']) => {
      const session = http2.connect(https, {
        ca: server.certPem,
        checkServerIdentity: () => undefined,
        ALPNProtocols: alpn,
        ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
      });
      session.on('error', () => {});
      try {
        const answer = await grpcCall(session, HEALTH_CHECK.path, encode(HEALTH_CHECK.request, {}));
        // A connection closed under the call ends it with no status at all.
        return answer.trailers['grpc-status'] ?? 'refused';
      } catch {
        return 'refused';
      } finally {
        session.destroy();
      }
    };
    expect(await attempt(client)).toBe('0');
    expect(await attempt(stranger)).toBe('refused');
    expect(await attempt()).toBe('refused');
    expect(refusals).toEqual([
      'refused a connection without the client certificate',
      'refused a connection without the client certificate',
    ]);
  });
});
