import type { ConnectionOptions } from 'node:tls';
import type { Dispatcher } from 'undici';

/**
 * HTTP/1.1 exchanges with the Rigbox API and with Vault, over undici's keep-alive pools, through
 * the proxy the environment names: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (either case), as
 * every Go provider honours them and as enterprise CI needs. A thin layer: it keeps the one
 * `exchange()` the clients call, a whole-exchange deadline, one retry of a GET whose reused
 * connection closed unanswered, and error codes that never carry a value.
 *
 * undici is loaded on the first exchange, not at start: most of a plan's provider processes
 * (schemas, validation) never make a request, and they would pay its load for nothing.
 */

export interface Exchange {
  status: number;
  text: string;
}

/**
 * Headers and paths may hold printable ASCII (and tabs) only. undici refuses line breaks too;
 * this check comes first so that the error is ours, says which rule, and names no value (one of
 * the headers is the token).
 */
const UNSAFE = /[^\t\x20-\x7e]/;
/** An answer larger than this is refused rather than buffered (the largest real one, a page of configs, is ~40 KB per 100). */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

export class TransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

/** undici's error codes, as the socket-style codes the clients report. */
const CODES: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_HEADERS_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_BODY_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_SOCKET: 'ECONNRESET',
  UND_ERR_CLOSED: 'ECONNRESET',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'E2BIG',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'EPROTO',
  HPE_INVALID_CONSTANT: 'EPROTO',
  HPE_INVALID_CHUNK_SIZE: 'EPROTO',
  HPE_INVALID_CONTENT_LENGTH: 'EPROTO',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'EPROTO',
  HPE_INVALID_HEADER_TOKEN: 'EPROTO',
  HPE_INVALID_STATUS: 'EPROTO',
  HPE_INVALID_VERSION: 'EPROTO',
};

function codeOf(err: unknown): string {
  // llhttp's errors carry their HPE_ code in `code` on some paths and nowhere on others.
  if ((err as Error)?.name === 'HTTPParserError') return 'EPROTO';
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string') return CODES[e.code] ?? e.code;
    e = e.cause as typeof e;
  }
  return (err as Error)?.name ?? 'Error';
}

type Undici = typeof import('undici');
let undici: Promise<Undici> | undefined;

export class ApiTransport {
  private dispatcher: Promise<Dispatcher> | undefined;
  private readonly origin: string;
  private readonly prefix: string;

  constructor(
    url: URL,
    readonly timeoutMs: number,
    /** At most this many connections at once; tofu runs 10 resources at a time by default. */
    private readonly maxConnections = 16,
    /** Extra TLS options (Vault's or a test's CA); the default verifies against Node's trusted roots. */
    private readonly tlsOptions: ConnectionOptions = {},
  ) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TransportError('EPROTO', `unsupported scheme ${url.protocol}`);
    }
    this.origin = url.origin;
    this.prefix = url.pathname.replace(/\/+$/, '');
  }

  private agent(): Promise<Dispatcher> {
    undici ??= import('undici');
    this.dispatcher ??= undici.then(
      ({ EnvHttpProxyAgent }) =>
        new EnvHttpProxyAgent({
          connections: this.maxConnections,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
          maxResponseSize: MAX_ANSWER_BYTES,
          connect: { timeout: this.timeoutMs, ...this.tlsOptions },
          // Through a proxy, the CA still verifies the server at the end of the tunnel.
          requestTls: { ...this.tlsOptions },
        }),
    );
    return this.dispatcher;
  }

  async exchange(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<Exchange> {
    if (UNSAFE.test(path) || Object.entries(headers).some(([k, v]) => UNSAFE.test(k) || UNSAFE.test(v))) {
      throw new TransportError(
        'EINVALIDHEADER',
        'a request header or path holds a character HTTP/1.1 cannot carry',
      );
    }
    const dispatcher = await this.agent();
    const send = async (): Promise<Exchange> => {
      const res = await dispatcher.request({
        origin: this.origin,
        path: `${this.prefix}${path}`,
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body ?? null,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > MAX_ANSWER_BYTES) {
        res.body.destroy();
        throw new TransportError('E2BIG', 'answer too large');
      }
      return { status: res.statusCode, text: await res.body.text() };
    };
    try {
      return await send();
    } catch (first) {
      // A server may close an idle keep-alive connection as a request goes out on it: a GET is
      // sent once more (as browsers do), a write never is.
      if (method === 'GET' && codeOf(first) === 'ECONNRESET') {
        try {
          return await send();
        } catch (second) {
          throw asTransportError(second);
        }
      }
      throw asTransportError(first);
    }
  }

  close(): void {
    void this.dispatcher?.then((d) => d.destroy());
  }
}

function asTransportError(err: unknown): TransportError {
  if (err instanceof TransportError) return err;
  if ((err as Error)?.name === 'TimeoutError') return new TransportError('ETIMEDOUT', 'no answer in time');
  const code = codeOf(err);
  // The message is undici's or the socket's: it names a host or a rule, never a header value.
  return new TransportError(code, `${code}: the exchange failed`);
}
