import type { Agent as HttpAgent, request as httpRequest, IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import { getProxyForUrl } from 'proxy-from-env';

/**
 * HTTP/1.1 exchanges with the Rigbox API and with Vault, over Node's own client (node:http and
 * node:https) with keep-alive pools, through the proxy the environment names: `HTTPS_PROXY`,
 * `HTTP_PROXY` and `NO_PROXY` (either case), as every Go provider honours them and as enterprise
 * CI needs (proxy-from-env reads them; https-proxy-agent opens the CONNECT tunnel). A thin layer:
 * it keeps the one `exchange()` the clients call, a whole-exchange deadline, one retry of a GET
 * whose reused connection closed unanswered, and error codes that never carry a value (a proxy
 * that refuses the tunnel is `EPROXY_<status>`, never an answer of the endpoint's).
 *
 * Why Node's client and not undici: Node starts with node:http ready, while loading undici cost
 * ~60 ms in every provider process that calls the API (bench/provider, `--transport-ab`), most of
 * the gap to hashicorp/null at 100 resources. https-proxy-agent is loaded only when a proxy is set.
 */

export interface Exchange {
  status: number;
  text: string;
}

/**
 * Headers and paths may hold printable ASCII (and tabs) only. node:http refuses line breaks too;
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

function hasCode(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string') return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** llhttp's parse errors (an answer that is not HTTP, or framed two ways), as one code. */
function codeOf(err: unknown): string {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string') return e.code.startsWith('HPE_') ? 'EPROTO' : e.code;
    e = e.cause as typeof e;
  }
  return (err as Error)?.name ?? 'Error';
}

type Agent = HttpAgent | HttpsAgent;
interface Pool {
  agent: Agent;
  request: typeof httpRequest;
  /** Through a proxy's CONNECT tunnel. */
  proxied: boolean;
}

export class ApiTransport {
  private pool: Promise<Pool> | undefined;
  private readonly url: URL;
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
    this.url = url;
    this.prefix = url.pathname.replace(/\/+$/, '');
  }

  /**
   * The keep-alive pool: straight to the endpoint, or through the proxy the environment names for
   * it. node:http and node:https load here, not at start: two of a plan's three provider processes
   * never make a request.
   */
  private connections(): Promise<Pool> {
    this.pool ??= (async () => {
      // getBuiltinModule, not import(): a single executable has no loader for import(). The plain
      // bundle may run on a Node 20 older than getBuiltinModule (20.16), which has that loader.
      const secure = this.url.protocol === 'https:';
      const { Agent, request } =
        typeof process.getBuiltinModule === 'function'
          ? process.getBuiltinModule(secure ? 'node:https' : 'node:http')
          : secure
            ? await import('node:https')
            : await import('node:http');
      const options = { keepAlive: true, maxSockets: this.maxConnections };
      const proxy = proxyFor(this.url);
      if (!proxy) return { agent: new Agent(options), request, proxied: false };
      // A tunnel for http and https alike (as undici and Go's client do for https); through it the
      // CA still verifies the server at its end.
      const { HttpsProxyAgent } = await import('https-proxy-agent');
      return {
        agent: new HttpsProxyAgent(proxy.url, { ...options, headers: proxy.headers }),
        request,
        proxied: true,
      };
    })();
    return this.pool;
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
    let pool: Pool;
    try {
      pool = await this.connections();
    } catch (err) {
      throw asTransportError(err);
    }
    const { agent, request, proxied } = pool;
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const send = () =>
      new Promise<Exchange>((resolve, reject) => {
        const signal = AbortSignal.timeout(this.timeoutMs);
        // node:http reports an abort only once the request has a socket, and through a proxy the
        // socket comes when CONNECT is answered: a silent proxy would hold the exchange forever.
        const onAbort = () => fail(timeout());
        signal.addEventListener('abort', onAbort, { once: true });
        const fail = (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(signal.aborted ? timeout() : err);
        };
        const done = (exchange: Exchange) => {
          signal.removeEventListener('abort', onAbort);
          resolve(exchange);
        };
        // A proxy that refuses the tunnel: https-proxy-agent hands its answer (a 407, a 403, even a
        // 404) to node:http as if the endpoint had given it; it is a failure to reach the endpoint.
        let refused = false;
        const req = request(
          {
            ...this.tlsOptions,
            protocol: this.url.protocol,
            hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
            port: this.url.port,
            path: `${this.prefix}${path}`,
            method,
            headers: payload ? { ...headers, 'content-length': String(payload.length) } : headers,
            agent,
            signal,
          },
          (res: IncomingMessage) => {
            if (refused) {
              res.destroy();
              return;
            }
            if (Number(res.headers['content-length'] ?? 0) > MAX_ANSWER_BYTES) {
              res.destroy();
              fail(new TransportError('E2BIG', 'answer too large'));
              return;
            }
            const parts: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_ANSWER_BYTES) {
                res.destroy();
                fail(new TransportError('E2BIG', 'answer too large'));
              } else parts.push(chunk);
            });
            res.on('end', () =>
              done({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }),
            );
            // A connection cut inside the body ("aborted"), or a body that is not what it claims.
            res.on('error', fail);
          },
        );
        req.once('proxyConnect', ({ statusCode }: { statusCode: number }) => {
          if (statusCode === 200) return;
          refused = true;
          const status = Number.isInteger(statusCode) ? String(statusCode) : 'invalid';
          fail(new TransportError(`EPROXY_${status}`, `the proxy refused the tunnel (HTTP ${status})`));
        });
        req.on('error', fail);
        req.end(payload);
      });
    try {
      return await send();
    } catch (first) {
      // A server may close an idle keep-alive connection as a request goes out on it: a GET is
      // sent once more (as browsers do), a write never is.
      if (method === 'GET' && codeOf(first) === 'ECONNRESET') {
        try {
          return await send();
        } catch (second) {
          throw asTransportError(second, proxied);
        }
      }
      throw asTransportError(first, proxied);
    }
  }

  close(): void {
    this.pool?.then(
      (p) => p.agent.destroy(),
      () => {},
    );
  }
}

/**
 * The proxy the environment names for `url`: `https_proxy`/`HTTPS_PROXY` or `http_proxy`/`HTTP_PROXY`
 * by scheme, unless `NO_PROXY` lists the host (proxy-from-env's rules); not `ALL_PROXY` (often a
 * SOCKS proxy), which neither Go's client nor undici reads. Its credentials go in a header rather
 * than in the URL https-proxy-agent keeps, which its debug log (`DEBUG=https-proxy-agent`) prints.
 */
function proxyFor(url: URL): { url: URL; headers: Record<string, string> } | undefined {
  const scheme = url.protocol.slice(0, -1);
  const named = process.env[`${scheme}_proxy`] || process.env[`${scheme.toUpperCase()}_PROXY`];
  // getProxyForUrl answers the same variable, or '' when NO_PROXY lists the host.
  if (!named || !getProxyForUrl(url.href)) return undefined;
  const invalid = () =>
    new TransportError(
      'EPROXY_URL',
      `${scheme.toUpperCase()}_PROXY is not an http:// or https:// URL of a proxy`,
    );
  let proxy: URL;
  let user: string;
  let password: string;
  try {
    // No scheme: an http:// proxy, as Go's client takes it (proxy-from-env would take the endpoint's).
    proxy = new URL(named.includes('://') ? named : `http://${named}`);
    user = decodeURIComponent(proxy.username);
    password = decodeURIComponent(proxy.password);
  } catch {
    throw invalid();
  }
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') throw invalid();
  if (!proxy.username && !proxy.password) return { url: proxy, headers: {} };
  proxy.username = '';
  proxy.password = '';
  const basic = Buffer.from(`${user}:${password}`).toString('base64');
  return { url: proxy, headers: { 'Proxy-Authorization': `Basic ${basic}` } };
}

function timeout(): TransportError {
  return new TransportError('ETIMEDOUT', 'no answer in time');
}

function asTransportError(err: unknown, proxied = false): TransportError {
  if (err instanceof TransportError) return err;
  if (proxied && !hasCode(err)) {
    // https-proxy-agent's own failures (the proxy hung up or answered something not HTTP) carry no code.
    return new TransportError(
      'EPROXY',
      'the proxy hung up on CONNECT, or answered it with something not HTTP',
    );
  }
  const code = codeOf(err);
  // The message is the socket's: it names a host or a rule, never a header value.
  return new TransportError(code, `${code}: the exchange failed`);
}
