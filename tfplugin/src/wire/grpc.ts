import net from 'node:net';
import tls from 'node:tls';
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
  MAX_REQUEST_BYTES,
  unframe,
} from './grpc-common.js';
import { encodeHeaders } from './hpack.js';
import { ServerConnection, type ServerStream } from './http2.js';

/**
 * gRPC over HTTP/2, the subset a plugin server needs: unary calls, one bidirectional stream that
 * is held open, and "unimplemented" for anything else. On our own HTTP/2 server (http2.ts), so the
 * provider starts without loading a gRPC library and answers each call with one socket write.
 */
// The answers' header blocks never change but for the status: encoded once.
const RESPONSE_HEADERS = encodeHeaders([
  [':status', '200'],
  ['content-type', 'application/grpc'],
]);
const OK_TRAILERS = encodeHeaders([['grpc-status', GRPC_OK]]);

function trailersOnly(stream: ServerStream, status: string, message: string) {
  stream.respond(
    encodeHeaders([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', status],
      ['grpc-message', grpcMessage(message)],
    ]),
    true,
  );
}

interface Call {
  path: string;
  held: boolean;
  chunks: Buffer[];
  size: number;
  /** Answered already (too large): the rest of the request is dropped. */
  refused: boolean;
}

export function createGrpcServer(options: GrpcServerOptions): net.Server {
  const maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;
  const handler = {
    headers(stream: ServerStream, fields: readonly (readonly [string, string])[]) {
      let path = '';
      for (const [name, value] of fields) {
        if (name === ':path') path = value;
      }
      const held = options.heldStreams.has(path);
      stream.state = { path, held, chunks: [], size: 0, refused: false } satisfies Call;
      if (held) {
        stream.respond(RESPONSE_HEADERS);
      } else if (!options.unary.has(path)) {
        trailersOnly(stream, GRPC_UNIMPLEMENTED, `unknown method ${path}`);
      }
    },
    data(stream: ServerStream, chunk: Buffer) {
      const call = stream.state as Call;
      if (call.held || call.refused || !options.unary.has(call.path)) return;
      call.size += chunk.length;
      if (call.size > maxRequestBytes + 5) {
        call.refused = true;
        call.chunks = [];
        trailersOnly(stream, GRPC_RESOURCE_EXHAUSTED, `request larger than ${maxRequestBytes} bytes`);
        return;
      }
      call.chunks.push(chunk);
    },
    end(stream: ServerStream) {
      const call = stream.state as Call;
      if (call.held) {
        stream.finish(undefined, OK_TRAILERS);
        return;
      }
      const route = options.unary.get(call.path);
      if (!route || call.refused) return;
      let request: Record<string, unknown>;
      try {
        const body = call.chunks.length === 1 ? (call.chunks[0] as Buffer) : Buffer.concat(call.chunks);
        request = decode(route.method.request, unframe(body));
      } catch (err) {
        options.onError(call.path, err);
        trailersOnly(stream, GRPC_INTERNAL, 'malformed request');
        return;
      }
      route
        .handler(request)
        .then((response) => {
          if (!stream.open) return;
          const body = framed(route.method.response, response);
          stream.respond(RESPONSE_HEADERS);
          stream.finish(body, OK_TRAILERS, route.afterAnswer);
        })
        .catch((err: unknown) => {
          options.onError(call.path, err);
          if (stream.open) trailersOnly(stream, GRPC_INTERNAL, 'internal error');
        });
    },
  };
  const onConnection = (socket: net.Socket) => {
    socket.setNoDelay(true);
    new ServerConnection(socket, handler, (err) => options.onError('(connection)', err));
  };
  if (!options.tls) return net.createServer(onConnection);
  const { certPem, keyPem, clientCertPem } = options.tls;
  const clientCert = certificateDer(clientCertPem);
  const secureServer = () =>
    tls.createServer(autoMtlsOptions(certPem, keyPem), (socket) => {
      const presented = socket.getPeerX509Certificate();
      if (!presented?.raw.equals(clientCert)) {
        options.onError('(connection)', new Error(CLIENT_CERT_REFUSED));
        socket.destroy();
        return;
      }
      onConnection(socket);
    });
  // The TLS side is built once the socket listens, in the next turn of the event loop: by then the
  // handshake line is out, and the TLS context (a few milliseconds) is made while go-plugin reads
  // the line and dials, about 3 ms in which we would otherwise wait. Connections are handed to it
  // as net.Server documents ('connection' may be emitted to inject a socket).
  let secure: tls.Server | undefined;
  const ready = () => {
    try {
      secure ??= secureServer();
    } catch (err) {
      // A key or certificate OpenSSL refuses: logged, and connections are closed unserved.
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
