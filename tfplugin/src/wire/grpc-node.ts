import http2 from 'node:http2';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { decode } from '../proto/protobuf.js';
import { certificateDer } from './certificate.js';
import {
  autoMtlsOptions,
  CLIENT_CERT_REFUSED,
  framed,
  GRPC_INTERNAL,
  GRPC_OK,
  GRPC_RESOURCE_EXHAUSTED,
  GRPC_UNIMPLEMENTED,
  type GrpcServerOptions,
  grpcMessage,
  MAX_CONCURRENT_STREAMS,
  MAX_REQUEST_BYTES,
  unframe,
} from './grpc-common.js';

/**
 * The same gRPC server as grpc.ts (unary calls, held streams, "unimplemented" for anything else,
 * AutoMTLS with the client certificate pinned), on node:http2 instead of our own HTTP/2 and HPACK.
 */

const MAX_WINDOW = 2 ** 31 - 1;
const SETTINGS: http2.Settings = {
  // As large as allowed, so requests never wait on us for window; as our own server advertises.
  initialWindowSize: MAX_WINDOW,
  maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
};

function trailersOnly(stream: http2.ServerHttp2Stream, status: string, message: string) {
  if (stream.headersSent || stream.destroyed) return;
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': status,
      'grpc-message': grpcMessage(message),
    },
    { endStream: true },
  );
}

export function createGrpcServer(options: GrpcServerOptions): net.Server {
  const maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;

  const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const path = String(headers[':path'] ?? '');
    // A stream reset or a connection lost mid-call: nothing to answer.
    stream.on('error', () => {});
    if (options.heldStreams.has(path)) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': GRPC_OK }));
      stream.resume();
      stream.on('end', () => stream.end());
      return;
    }
    const route = options.unary.get(path);
    if (!route) {
      trailersOnly(stream, GRPC_UNIMPLEMENTED, `unknown method ${path}`);
      stream.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxRequestBytes + 5) {
        refused = true;
        chunks.length = 0;
        trailersOnly(stream, GRPC_RESOURCE_EXHAUSTED, `request larger than ${maxRequestBytes} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (refused) return;
      let request: Record<string, unknown>;
      try {
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        request = decode(route.method.request, unframe(body));
      } catch (err) {
        options.onError(path, err);
        trailersOnly(stream, GRPC_INTERNAL, 'malformed request');
        return;
      }
      route
        .handler(request)
        .then((response) => {
          if (stream.destroyed || stream.closed) return;
          const body = framed(route.method.response, response);
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': GRPC_OK }));
          // Closed: the trailers ending the stream have gone to the socket.
          if (route.afterAnswer) stream.once('close', route.afterAnswer);
          stream.end(body);
        })
        .catch((err: unknown) => {
          options.onError(path, err);
          trailersOnly(stream, GRPC_INTERNAL, 'internal error');
        });
    });
  };

  const onSession = (session: http2.ServerHttp2Session) => {
    session.on('error', (err) => options.onError('(connection)', err));
    // Our receive window for the whole connection as large as allowed, as for each stream.
    session.on('connect', () => session.setLocalWindowSize(MAX_WINDOW));
  };

  if (!options.tls) {
    const server = http2.createServer({ settings: SETTINGS });
    server.on('stream', onStream);
    server.on('session', onSession);
    return server;
  }

  const { certPem, keyPem, clientCertPem } = options.tls;
  const clientCert = certificateDer(clientCertPem);
  const secureServer = () => {
    const s = http2.createSecureServer({ ...autoMtlsOptions(certPem, keyPem), settings: SETTINGS });
    s.on('stream', onStream);
    s.on('session', (session) => {
      // Emitted as the session is made over the finished TLS handshake, before any frame is read.
      const presented = (session.socket as TLSSocket).getPeerX509Certificate();
      if (!presented?.raw.equals(clientCert)) {
        options.onError('(connection)', new Error(CLIENT_CERT_REFUSED));
        session.destroy();
        return;
      }
      onSession(session);
    });
    return s;
  };
  // As in grpc.ts: the TLS side is built once the socket listens, while go-plugin reads the
  // handshake line and dials, and connections are handed to it through 'connection'.
  let secure: http2.Http2SecureServer | undefined;
  const ready = () => {
    try {
      secure ??= secureServer();
    } catch (err) {
      options.onError('(tls)', err);
    }
    return secure;
  };
  const server = net.createServer((raw) => {
    const s = ready();
    if (s) s.emit('connection', raw);
    else raw.destroy();
  });
  server.once('listening', () => setImmediate(ready));
  return server;
}
