import http2 from 'node:http2';
import type { Method } from './messages.js';
import { decode, encode } from './protobuf.js';

/**
 * gRPC over HTTP/2, the subset a plugin server needs: unary calls, one bidirectional stream that
 * is held open, and "unimplemented" for anything else. Built on node:http2 so the provider starts
 * without loading a gRPC library.
 */
export type UnaryHandler = (request: Record<string, unknown>) => Promise<Record<string, unknown>>;

export interface GrpcServerOptions {
  /** With TLS: our certificate and key, and the one client certificate we accept. */
  tls?: { certPem: string; keyPem: string; clientCertPem: string };
  unary: ReadonlyMap<string, { method: Method; handler: UnaryHandler }>;
  /** Paths of streams to accept and hold open until the client ends them. */
  heldStreams: ReadonlySet<string>;
  onError: (path: string, err: unknown) => void;
}

const GRPC_OK = '0';
const GRPC_INTERNAL = '13';
const GRPC_UNIMPLEMENTED = '12';

/** A gRPC message frame: 1 byte compressed flag, 4 bytes big-endian length, the message. */
function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function unframe(data: Buffer): Buffer {
  if (data.length < 5) return Buffer.alloc(0);
  if (data.readUInt8(0) !== 0) throw new Error('compressed gRPC messages are not supported');
  const len = data.readUInt32BE(1);
  return data.subarray(5, 5 + len);
}

function trailersOnly(stream: http2.ServerHttp2Stream, status: string, message: string) {
  if (stream.destroyed) return;
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': status,
      'grpc-message': encodeURIComponent(message),
    },
    { endStream: true },
  );
}

export function createGrpcServer(options: GrpcServerOptions): http2.Http2Server | http2.Http2SecureServer {
  const server = options.tls
    ? http2.createSecureServer({
        cert: options.tls.certPem,
        key: options.tls.keyPem,
        ca: [options.tls.clientCertPem],
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        ALPNProtocols: ['h2'],
      })
    : http2.createServer();

  server.on('stream', (stream, headers) => {
    const path = String(headers[':path'] ?? '');
    stream.on('error', () => {});
    if (options.heldStreams.has(path)) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': GRPC_OK }));
      stream.on('data', () => {});
      stream.on('end', () => stream.end());
      return;
    }
    const route = options.unary.get(path);
    if (!route) {
      // Drain the request before answering, so the client sees a clean status.
      stream.on('data', () => {});
      trailersOnly(stream, GRPC_UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      let request: Record<string, unknown>;
      try {
        request = decode(route.method.request, unframe(Buffer.concat(chunks)));
      } catch (err) {
        options.onError(path, err);
        trailersOnly(stream, GRPC_INTERNAL, 'malformed request');
        return;
      }
      route
        .handler(request)
        .then((response) => {
          if (stream.destroyed) return;
          const body = frame(encode(route.method.response, response));
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': GRPC_OK }));
          stream.end(body);
        })
        .catch((err: unknown) => {
          options.onError(path, err);
          trailersOnly(stream, GRPC_INTERNAL, 'internal error');
        });
    });
  });
  return server;
}
