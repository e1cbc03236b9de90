import type { Method } from '../proto/messages.js';
import { encodeAfter, type MessageType } from '../proto/protobuf.js';

/**
 * What both gRPC servers share (grpc.ts on our own HTTP/2, grpc-node.ts on node:http2): the
 * options, the gRPC message framing, the status codes and limits.
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

export const GRPC_OK = '0';
export const GRPC_INTERNAL = '13';
export const GRPC_UNIMPLEMENTED = '12';
export const GRPC_RESOURCE_EXHAUSTED = '8';
/**
 * The largest request accepted: what Go providers accept (terraform-plugin-go's 256 MiB), since a
 * plan or apply carries config, prior and planned state together.
 */
export const MAX_REQUEST_BYTES = 256 * 1024 * 1024;
/** Streams a client may have open at once (Terraform's default parallelism is 10). */
export const MAX_CONCURRENT_STREAMS = 128;

/** A gRPC message: uncompressed flag, 4-byte big-endian length, then the message. */
export function framed(type: MessageType, value: Record<string, unknown> | Uint8Array): Buffer {
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
export function unframe(data: Buffer): Buffer {
  if (data.length < 5) throw new Error('a unary request without a message');
  if (data.readUInt8(0) !== 0) throw new Error('compressed gRPC messages are not supported');
  const len = data.readUInt32BE(1);
  if (5 + len !== data.length) throw new Error('the message length does not match the request body');
  return data.subarray(5);
}

/** A grpc-message value: percent-encoded, as gRPC specifies, and kept short. */
export const grpcMessage = (message: string) => encodeURIComponent(message.slice(0, 500));

/**
 * TLS server options for AutoMTLS. The one certificate go-plugin's client presents is pinned by
 * the caller after the handshake (its DER must match exactly). Given to OpenSSL as a CA instead
 * (`ca: [cert]`), it was no stricter, and Node first built a store of its ~140 bundled root
 * certificates for it: 30 ms of every provider start. An empty `ca` builds no store.
 */
export function autoMtlsOptions(certPem: string, keyPem: string) {
  return {
    cert: certPem,
    key: keyPem,
    ca: [],
    // Ask for the client's certificate and let the handshake finish whatever it is; the check
    // follows, before any byte is read. The handshake itself still proves the client holds the
    // certificate's private key (CertificateVerify).
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2' as const,
    ALPNProtocols: ['h2'],
    // Given, so Node does not derive one by hashing the command line (a hash module load and a
    // digest at every start); there is one connection per process and no session to resume.
    sessionIdContext: 'tfplugin',
  };
}

export const CLIENT_CERT_REFUSED = 'refused a connection without the client certificate';
