import net from 'node:net';
import tls from 'node:tls';
import type { Method } from '../proto/messages.js';
import { decode, encodeAfter, type MessageType } from '../proto/protobuf.js';
import { certificateDer } from './certificate.js';
import { encodeHeaders } from './hpack.js';
import { ServerConnection, type ServerStream } from './http2.js';

/**
 * gRPC over HTTP/2, the subset a plugin server needs: unary calls, one bidirectional stream that
 * is held open, and "unimplemented" for anything else. On our own HTTP/2 server (http2.ts), so the
 * provider starts without loading a gRPC library and answers each call with one socket write.
 */
/** A handler answers with a message to encode, or with one already encoded (its bytes, unframed). */
export type UnaryHandler = (
  request: Record<string, unknown>,
) => Promise<Record<string, unknown> | Uint8Array>;

export interface UnaryRoute {
  method: Method;
  handler: UnaryHandler;
  /** Runs once the answer has been written to the socket (the controller's Shutdown exits then). */
  afterAnswer?: () => void;
}

export interface GrpcServerOptions {
  /** With TLS: our certificate and key, and the one client certificate we accept. */
  tls?: { certPem: string; keyPem: string; clientCertPem: string };
  unary: ReadonlyMap<string, UnaryRoute>;
  /** Paths of streams to accept and hold open until the client ends them. */
  heldStreams: ReadonlySet<string>;
  onError: (path: string, err: unknown) => void;
  /** Requests larger than this get RESOURCE_EXHAUSTED; MAX_REQUEST_BYTES unless said. */
  maxRequestBytes?: number;
}

const GRPC_OK = '0';
const GRPC_INTERNAL = '13';
const GRPC_UNIMPLEMENTED = '12';
const GRPC_RESOURCE_EXHAUSTED = '8';
/**
 * The largest request accepted: what Go providers accept (terraform-plugin-go's 256 MiB), since a
 * plan or apply carries config, prior and planned state together.
 */
export const MAX_REQUEST_BYTES = 256 * 1024 * 1024;

/** A gRPC message: uncompressed flag, 4-byte big-endian length, then the message. */
function framed(type: MessageType, value: Record<string, unknown> | Uint8Array): Buffer {
  let out: Buffer;
  if (value instanceof Uint8Array) {
    out = Buffer.allocUnsafe(5 + value.length);
    out.set(value, 5);
  } else {
    out = encodeAfter(5, type, value);
  }
  out[0] = 0;
  out.writeUInt32BE(out.length - 5, 1);
  return out;
}

/** The one message of a unary request; its length prefix must account for every byte. */
function unframe(data: Buffer): Buffer {
  if (data.length < 5) throw new Error('a unary request without a message');
  if (data.readUInt8(0) !== 0) throw new Error('compressed gRPC messages are not supported');
  const len = data.readUInt32BE(1);
  if (5 + len !== data.length) throw new Error('the message length does not match the request body');
  return data.subarray(5);
}

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
      ['grpc-message', encodeURIComponent(message.slice(0, 500))],
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
  // The one certificate go-plugin's client presents, pinned: its DER must match exactly. Given to
  // OpenSSL as a CA instead (`ca: [cert]`, as before), it was no stricter, and Node first built a
  // store of its ~140 bundled root certificates for it: 30 ms of every provider start. An empty
  // `ca` builds no store.
  const { certPem, keyPem, clientCertPem } = options.tls;
  const clientCert = certificateDer(clientCertPem);
  const secureServer = () =>
    tls.createServer(
      {
        cert: certPem,
        key: keyPem,
        ca: [],
        // Ask for the client's certificate and let the handshake finish whatever it is; the check
        // is below, before any byte is read. The handshake itself still proves the client holds
        // the certificate's private key (CertificateVerify).
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        ALPNProtocols: ['h2'],
        // Given, so Node does not derive one by hashing the command line (a hash module load and a
        // digest at every start); there is one connection per process and no session to resume.
        sessionIdContext: 'tfplugin',
      },
      (socket) => {
        const presented = socket.getPeerX509Certificate();
        if (!presented?.raw.equals(clientCert)) {
          options.onError('(connection)', new Error('refused a connection without the client certificate'));
          socket.destroy();
          return;
        }
        onConnection(socket);
      },
    );
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
