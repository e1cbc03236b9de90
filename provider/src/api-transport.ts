// Static imports: the gRPC server has loaded both already, while a dynamic import() in the CommonJS
// bundle would start Node's ESM loader, ~5 ms of a provider process.
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';

/**
 * HTTP/1.1 exchanges over a small pool of keep-alive connections: how the provider talks to the
 * Rigbox API and to Vault.
 *
 * Why not node:http: tofu starts a provider process for a few hundred RPCs and exits it, so the
 * provider's code runs mostly cold (interpreted). In that regime node:http's client costs about
 * half a millisecond of CPU per request (streams, agent bookkeeping, the parser's callbacks),
 * which on a plan of 100 resources was a tenth of the provider's CPU. This client writes a
 * request as one string and reads the answer from the socket's own chunks. It speaks exactly the
 * HTTP/1.1 an API client needs: a fixed-length, chunked or read-to-close body; 1xx answers
 * skipped; `Connection: close` honoured; an idle connection the server closed retried once for
 * a GET (as browsers do), never for a write.
 */

export interface Exchange {
  status: number;
  text: string;
}

/**
 * The request is framed by line breaks, so a path or header may hold printable ASCII (and tabs)
 * only: a CR or LF would forge a header, and so would a character whose low byte is one, written
 * as latin1.
 */
const UNSAFE = /[^\t\x20-\x7e]/;
/** An answer larger than this is refused rather than buffered (the largest real one, a list of 100 configs, is ~40 KB). */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

export class TransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

interface Pending {
  method: string;
  /** Sent again once already, after a reused connection closed unanswered. */
  retried?: boolean;
  head: string;
  body: Buffer | undefined;
  resolve(res: Exchange): void;
  reject(err: unknown): void;
}

export class ApiTransport {
  private readonly idle: Connection[] = [];
  private readonly waiting: Pending[] = [];
  private open = 0;
  private readonly hostHeader: string;
  private readonly prefix: string;

  constructor(
    private readonly url: URL,
    readonly timeoutMs: number,
    /** At most this many connections at once; tofu runs 10 resources at a time by default. */
    private readonly maxConnections = 16,
    /** Extra TLS options (Vault's or a test's CA); the default verifies against Node's trusted roots. */
    private readonly tlsOptions: ConnectionOptions = {},
  ) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TransportError('EPROTO', `unsupported scheme ${url.protocol}`);
    }
    this.hostHeader = url.host;
    this.prefix = url.pathname.replace(/\/+$/, '');
  }

  exchange(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Exchange> {
    // Checked part by part; the error names no value (one of them is the token).
    if (UNSAFE.test(path) || Object.entries(headers).some(([k, v]) => UNSAFE.test(k) || UNSAFE.test(v))) {
      return Promise.reject(
        new TransportError(
          'EINVALIDHEADER',
          'a request header or path holds a character HTTP/1.1 cannot carry',
        ),
      );
    }
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    let head = `${method} ${this.prefix}${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    if (payload) head += `content-length: ${payload.length}\r\n`;
    head += '\r\n';
    return new Promise((resolve, reject) => {
      this.dispatch({ method, head, body: payload, resolve, reject });
    });
  }

  /** Closes idle connections (busy ones close when their exchange ends). */
  close(): void {
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
  }

  private dispatch(req: Pending): void {
    let connection = this.idle.pop();
    // A connection destroyed or ended while idle leaves the list only on 'close', a later phase of
    // the event loop: until then it is passed over, so that no request is written into it.
    while (connection && !connection.usable) connection = this.idle.pop();
    if (connection) connection.send(req, true);
    else if (this.open < this.maxConnections) this.connect(req);
    else this.waiting.push(req);
  }

  private connect(req: Pending): void {
    let socket: Socket;
    try {
      socket = this.openSocket();
    } catch (err) {
      // Synchronous refusals only (an invalid port, say); connection failures arrive as 'error'.
      req.reject(err);
      return;
    }
    this.open++;
    new Connection(socket, this).send(req, false);
  }

  private openSocket(): Socket {
    const port = Number(this.url.port) || (this.url.protocol === 'https:' ? 443 : 80);
    // URL keeps IPv6 literals bracketed; sockets want them bare.
    const host = this.url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (this.url.protocol !== 'https:') return connectTcp({ host, port });
    const servername = isIP(host) ? undefined : host;
    return connectTls({ host, port, servername, ALPNProtocols: ['http/1.1'], ...this.tlsOptions });
  }

  /** A connection finished an exchange and may serve the next. */
  released(connection: Connection): void {
    const next = this.waiting.shift();
    if (next) {
      connection.send(next, true);
      return;
    }
    // An idle connection does not keep the process alive.
    connection.socket.unref();
    this.idle.push(connection);
  }

  /**
   * An exchange failed. A connection that served an earlier exchange may have been closed by the
   * server while it sat idle, which shows as a close before any byte of the answer: a GET is then
   * sent again, once, on another connection. Anything else, and any write, fails.
   */
  failed(req: Pending, err: unknown, retry: boolean): void {
    if (retry && req.method === 'GET' && !req.retried) this.dispatch({ ...req, retried: true });
    else req.reject(err);
  }

  closed(connection: Connection): void {
    this.open--;
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
    const next = this.waiting.shift();
    if (next) this.dispatch(next);
  }
}

/**
 * One keep-alive connection. Its listeners are set once, when it opens, and route to the exchange
 * in progress: adding and removing four listeners per request was a visible cost.
 */
class Connection {
  private current: { req: Pending; reader: AnswerReader; reused: boolean; received: boolean } | undefined;

  constructor(
    readonly socket: Socket,
    private readonly pool: ApiTransport,
  ) {
    socket.setNoDelay(true);
    // Inactivity: a busy connection's exchange times out; an idle one is closed.
    socket.setTimeout(pool.timeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // The socket's own error (ECONNREFUSED, a TLS failure) is the one worth reporting; 'close' follows.
    socket.on('error', (err) => this.fail(err));
    socket.on('timeout', () => {
      if (this.current) this.fail(new TransportError('ETIMEDOUT', 'no answer in time'));
      else socket.destroy();
    });
    socket.on('close', () => {
      const done = this.current?.reader.end();
      if (done) this.finish(done);
      else
        this.fail(new TransportError('ECONNRESET', 'the connection closed before the answer was complete'));
      pool.closed(this);
    });
  }

  get usable(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  send(req: Pending, reused: boolean): void {
    this.current = { req, reader: new AnswerReader(req.method === 'HEAD'), reused, received: false };
    this.socket.ref();
    // One write for head and body: one TLS record, one segment.
    const head = Buffer.from(req.head, 'latin1');
    this.socket.write(req.body ? Buffer.concat([head, req.body]) : head);
  }

  private onData(chunk: Buffer): void {
    const current = this.current;
    // An idle connection has nothing to read: bytes on it (a server's 408, say) end it.
    if (!current) {
      this.socket.destroy();
      return;
    }
    current.received = true;
    let done: Exchange | undefined;
    try {
      done = current.reader.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (done) this.finish(done);
  }

  private finish(res: Exchange): void {
    const { req, reader } = this.current as NonNullable<typeof this.current>;
    this.current = undefined;
    if (reader.keepAlive) this.pool.released(this);
    else this.socket.destroy();
    req.resolve(res);
  }

  private fail(err: unknown): void {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    this.socket.destroy();
    const timedOut = err instanceof TransportError && err.code === 'ETIMEDOUT';
    this.pool.failed(current.req, err, current.reused && !current.received && !timedOut);
  }
}

/** Parses one HTTP/1.1 answer from successive chunks. */
class AnswerReader {
  private buf: Buffer = Buffer.alloc(0);
  private status = 0;
  /** 'head' until the header block is read; then how the body is framed. */
  private state: 'head' | 'length' | 'chunked' | 'close' = 'head';
  private remaining = 0;
  /** A chunk's data is read; the CRLF after it is next. */
  private chunkEnd = false;
  private readonly parts: Buffer[] = [];
  private size = 0;
  keepAlive = true;

  constructor(private readonly noBody: boolean) {}

  /** Returns the answer once it is complete. */
  push(chunk: Buffer): Exchange | undefined {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.state === 'head') {
        const end = this.buf.indexOf(HEAD_END);
        if (end < 0) {
          if (this.buf.length > 64 * 1024) throw new TransportError('EPROTO', 'answer header too large');
          return undefined;
        }
        const head = this.buf.toString('latin1', 0, end);
        this.buf = this.buf.subarray(end + 4);
        const next = this.readHead(head);
        if (next === 'interim') continue; // a 1xx: its head is skipped, the real answer follows
        if (next === 'none') return this.done();
      }
      if (this.state === 'length') {
        const take = Math.min(this.remaining, this.buf.length);
        this.keep(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        return this.remaining === 0 ? this.done() : undefined;
      }
      if (this.state === 'close') {
        this.keep(this.buf);
        this.buf = Buffer.alloc(0);
        return undefined;
      }
      // chunked: size line, data, CRLF; a zero size, then trailers up to an empty line. Data is
      // kept as it arrives, so a large chunk is not joined again on every read.
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, this.buf.length);
        this.keep(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) return undefined;
        this.chunkEnd = true;
      }
      if (this.chunkEnd) {
        if (this.buf.length < 2) return undefined;
        if (this.buf[0] !== 13 || this.buf[1] !== 10)
          throw new TransportError('EPROTO', 'malformed chunked answer');
        this.buf = this.buf.subarray(2);
        this.chunkEnd = false;
      }
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) {
        if (this.buf.length > 4096) throw new TransportError('EPROTO', 'malformed chunked answer');
        return undefined;
      }
      if (this.remaining < 0) {
        // In the trailers: an empty line ends the answer.
        this.buf = this.buf.subarray(eol + 2);
        if (eol === 0) return this.done();
        continue;
      }
      const sizeText = this.buf.toString('latin1', 0, eol).split(';')[0]?.trim() ?? '';
      if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText))
        throw new TransportError('EPROTO', 'malformed chunked answer');
      this.buf = this.buf.subarray(eol + 2);
      const size = Number.parseInt(sizeText, 16);
      if (size === 0) this.remaining = -1;
      else {
        this.grow(size);
        this.remaining = size;
      }
    }
  }

  /** The connection closed: complete only for a read-to-close body. */
  end(): Exchange | undefined {
    return this.state === 'close' ? this.done() : undefined;
  }

  /** Reads a status line and headers: an interim (1xx) answer, one without a body, or one with. */
  private readHead(head: string): 'interim' | 'none' | 'body' {
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? '');
    if (!m) throw new TransportError('EPROTO', 'the server did not answer with HTTP/1.x');
    this.status = Number(m[2]);
    if (this.status >= 100 && this.status < 200) return 'interim';
    let length: number | undefined;
    /** Every transfer coding named, over all Transfer-Encoding lines, in order. */
    const codings: string[] = [];
    this.keepAlive = m[1] === '1';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line
        .slice(colon + 1)
        .trim()
        .toLowerCase();
      if (name === 'content-length') {
        if (!/^\d+$/.test(value) || (length !== undefined && length !== Number(value))) {
          throw new TransportError('EPROTO', 'malformed content-length');
        }
        length = Number(value);
      } else if (name === 'transfer-encoding') codings.push(...value.split(',').map((v) => v.trim()));
      else if (name === 'connection') {
        const tokens = value.split(',').map((v) => v.trim());
        if (tokens.includes('close')) this.keepAlive = false;
        else if (tokens.includes('keep-alive')) this.keepAlive = true;
      }
    }
    if (this.noBody || this.status === 204 || this.status === 304) return 'none';
    // RFC 9112 6.3: Transfer-Encoding overrides Content-Length (and then the connection is not
    // reused); chunked only as the final coding, any other coding is read to the close.
    if (codings.length > 0) {
      this.keepAlive = this.keepAlive && length === undefined;
      if (codings[codings.length - 1] === 'chunked') {
        this.state = 'chunked';
        this.remaining = 0;
      } else {
        this.state = 'close';
        this.keepAlive = false;
      }
    } else if (length === 0) {
      return 'none';
    } else if (length !== undefined) {
      this.grow(length);
      this.state = 'length';
      this.remaining = length;
    } else {
      this.state = 'close';
      this.keepAlive = false;
    }
    return 'body';
  }

  private grow(n: number): void {
    if (this.size + n > MAX_ANSWER_BYTES) throw new TransportError('E2BIG', 'answer too large');
  }

  private keep(part: Buffer): void {
    if (part.length === 0) return;
    this.grow(part.length);
    this.size += part.length;
    this.parts.push(part);
  }

  private done(): Exchange {
    // Bytes after a complete answer mean the server sent more than it framed: do not reuse.
    if (this.buf.length > 0) this.keepAlive = false;
    const body = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    return { status: this.status, text: body.toString('utf8') };
  }
}
