import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { createServerCertificate } from '@rigbox/tfplugin';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startConnectProxy } from '../../test/support/connect-proxy.js';
import { ApiTransport, type Exchange, type TransportError } from './api-transport.js';

/** Every server a test starts, closed after it (http servers with their keep-alive connections). */
const servers: { close(): unknown; closeAllConnections?: () => void }[] = [];
const transports: ApiTransport[] = [];
afterEach(async () => {
  for (const t of transports.splice(0)) t.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections?.();
    s.close();
  }
});

interface Seen {
  connections: number;
  requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
}

/** A real node:http server; `answer` writes each response as the case needs. */
async function httpServer(answer: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const seen: Seen = { connections: 0, requests: [] };
  const server = createHttpServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      seen.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      answer(req, res, body);
    });
  });
  server.on('connection', () => seen.connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return { seen, url: new URL(`http://127.0.0.1:${port}/base/`) };
}

/** A real node:https server on localhost answering "secure", with a certificate of its own. */
async function httpsServer() {
  const cert = createServerCertificate();
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) =>
    res.end('secure'),
  );
  server.listen(0, 'localhost');
  await once(server, 'listening');
  servers.push(server);
  return { cert, url: new URL(`https://localhost:${(server.address() as AddressInfo).port}`) };
}

/** A raw TCP server for answers node:http would not produce (read-to-close, 1xx, garbage). */
async function rawServer(
  onRequest: (socket: Socket, index: number, connection: number, head: string) => void,
) {
  let connections = 0;
  const server = createNetServer((socket) => {
    const connection = ++connections;
    let buf = '';
    let index = 0;
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        const end = buf.indexOf('\r\n\r\n') + 4;
        const head = buf.slice(0, end);
        buf = buf.slice(end);
        onRequest(socket, index++, connection, head);
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}`), connections: () => connections };
}

function transport(url: URL, timeoutMs = 5_000, maxConnections?: number, tls?: object) {
  const t = new ApiTransport(url, timeoutMs, maxConnections, tls);
  transports.push(t);
  return t;
}

async function failure(p: Promise<Exchange>): Promise<TransportError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as TransportError;
}

describe('ApiTransport', () => {
  it('sends method, path under the endpoint, headers and a sized body, and reuses the connection', async () => {
    const { seen, url } = await httpServer((_req, res, body) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ echo: body }));
    });
    const t = transport(url);
    const first = await t.exchange(
      'PUT',
      '/api/x?y=1',
      { authorization: 'Bearer t', 'content-type': 'application/json' },
      '{"a":"é"}',
    );
    expect(first).toEqual({ status: 200, text: JSON.stringify({ echo: '{"a":"é"}' }) });
    const second = await t.exchange('GET', '/api/y', { accept: 'application/json' });
    expect(second.status).toBe(200);
    for (let i = 0; i < 5; i++) await t.exchange('GET', '/api/y', {});
    // Seven exchanges one after another: kept-alive connections carry them, not one each.
    expect(seen.connections).toBeLessThanOrEqual(2);
    expect(seen.requests.slice(0, 2).map((r) => `${r.method} ${r.url}`)).toEqual([
      'PUT /base/api/x?y=1',
      'GET /base/api/y',
    ]);
    expect(seen.requests[0]?.headers).toMatchObject({
      host: url.host,
      authorization: 'Bearer t',
      'content-length': String(Buffer.byteLength('{"a":"é"}')),
    });
  });

  it('works on a Node 20 older than process.getBuiltinModule (20.16), which engines allows', async () => {
    const { url } = await httpServer((_req, res) => res.end('old node'));
    const saved = process.getBuiltinModule;
    Object.defineProperty(process, 'getBuiltinModule', {
      value: undefined,
      configurable: true,
      writable: true,
    });
    try {
      expect((await transport(url).exchange('GET', '/', {})).text).toBe('old node');
    } finally {
      Object.defineProperty(process, 'getBuiltinModule', {
        value: saved,
        configurable: true,
        writable: true,
      });
    }
  });

  it('reads a chunked answer written in pieces', async () => {
    const { url } = await httpServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.write('{"code":"not_');
      setTimeout(() => {
        res.write('found","message":"');
        res.end(`${'x'.repeat(70_000)}"}`);
      }, 5);
    });
    const res = await transport(url).exchange('GET', '/missing', {});
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toMatchObject({ code: 'not_found' });
    expect(res.text.length).toBe(70_000 + '{"code":"not_found","message":""}'.length);
  });

  it('opens at most maxConnections and queues the rest', async () => {
    const { seen, url } = await httpServer((_req, res) => setTimeout(() => res.end('ok'), 10));
    const t = transport(url, 5_000, 2);
    const all = await Promise.all(Array.from({ length: 6 }, (_, i) => t.exchange('GET', `/${i}`, {})));
    expect(all.map((r) => r.text)).toEqual(Array(6).fill('ok'));
    expect(seen.connections).toBe(2);
  });

  it('honours Connection: close with a new connection for the next exchange', async () => {
    // The server says close but leaves the socket open: only the header can stop its reuse.
    const { url, connections } = await rawServer((socket) =>
      socket.write('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbye'),
    );
    const t = transport(url);
    expect((await t.exchange('GET', '/a', {})).text).toBe('bye');
    expect((await t.exchange('GET', '/b', {})).text).toBe('bye');
    expect(connections()).toBe(2);
  });

  it('reads a body that ends with the connection', async () => {
    const { url } = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ');
      setTimeout(() => socket.end('close'), 5);
    });
    const res = await transport(url).exchange('GET', '/', {});
    expect(res).toEqual({ status: 200, text: 'until close' });
  });

  it('sends a GET again when a reused connection closes before answering, but never a PUT', async () => {
    // Each connection answers its first request and drops its second, as a server's idle timeout can.
    const { url, connections } = await rawServer((socket, index) => {
      if (index === 0) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      else socket.destroy();
    });
    const t = transport(url);
    await t.exchange('GET', '/1', {});
    expect(await t.exchange('GET', '/2', {})).toEqual({ status: 200, text: 'ok' });
    expect(connections()).toBe(2);
    const err = await failure(t.exchange('PUT', '/3', {}, '{}'));
    expect(err.code).toBe('ECONNRESET');
    expect(connections()).toBe(2);
  });

  it('times out a silent server', async () => {
    const { url } = await rawServer(() => {});
    const err = await failure(transport(url, 100).exchange('GET', '/', {}));
    expect(err.code).toBe('ETIMEDOUT');
  });

  it('reports the socket error of an unreachable endpoint', async () => {
    const { url } = await rawServer(() => {});
    servers.pop()?.close();
    await new Promise((r) => setTimeout(r, 20));
    const err = await failure(transport(url).exchange('GET', '/', {}));
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('refuses a line break or non-ASCII in a header or path without sending anything or naming the value', async () => {
    const { seen, url } = await httpServer((_req, res) => res.end('ok'));
    const t = transport(url);
    const secret = 'sk-CANARY-0123456789';
    for (const p of [
      t.exchange('GET', '/', { authorization: `Bearer ${secret}\r\nx-evil: 1` }),
      t.exchange('GET', `/a\r\nx-evil: ${secret}`, {}),
      // Characters whose low byte is CR and LF: written as latin1 they would be a line break.
      t.exchange('PUT', '/', { authorization: `Bearer ${secret}\u010d\u010ax-evil: 1` }, '{}'),
    ]) {
      const err = await failure(p);
      expect(err.code).toBe('EINVALIDHEADER');
      expect(err.message).not.toContain(secret);
    }
    expect(seen.requests).toEqual([]);
  });

  it('refuses an answer that is not HTTP or claims more than it may', async () => {
    const garbage = await rawServer((socket) => socket.write('SSH-2.0-OpenSSH\r\n\r\n'));
    expect((await failure(transport(garbage.url).exchange('GET', '/', {}))).code).toBe('EPROTO');
    const huge = await rawServer((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 999999999\r\n\r\n'),
    );
    expect((await failure(transport(huge.url).exchange('GET', '/', {}))).code).toBe('E2BIG');
    const badChunk = await rawServer((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'),
    );
    expect((await failure(transport(badChunk.url).exchange('GET', '/', {}))).code).toBe('EPROTO');
  });

  it('stops reading a chunked answer once it passes 32 MiB, and the connection is not reused', async () => {
    const { url, connections } = await rawServer((socket, _index, connection) => {
      if (connection > 1) {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        return;
      }
      const piece = Buffer.alloc(1024 * 1024, 'z');
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      for (let i = 0; i < 33; i++) socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
    });
    const t = transport(url);
    expect((await failure(t.exchange('GET', '/', {}))).code).toBe('E2BIG');
    expect((await t.exchange('GET', '/', {})).text).toBe('ok');
    expect(connections()).toBe(2);
  });

  it('refuses an answer framed two ways (Transfer-Encoding and Content-Length), and reads a chunk larger than any one read', async () => {
    const big = 'y'.repeat(300_000);
    const { url } = await rawServer((socket, _index, connection) => {
      if (connection === 1) {
        // Two framings at once is how responses are smuggled: refused, not guessed at.
        socket.write(
          'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
        );
      } else {
        socket.write(
          `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${big.length.toString(16).padStart(12, '0')};ext=1\r\n`,
        );
        setTimeout(() => socket.write(`${big}\r\n0\r\nx-trailer: 1\r\n\r\n`), 5);
      }
    });
    const t = transport(url);
    expect((await failure(t.exchange('GET', '/', {}))).code).toBe('EPROTO');
    expect((await t.exchange('GET', '/', {})).text).toBe(big);
  });

  it('speaks HTTPS, verifying the server certificate and its name', async () => {
    const { cert, url } = await httpsServer();
    expect(await transport(url, 5_000, undefined, { ca: cert.certPem }).exchange('GET', '/', {})).toEqual({
      status: 200,
      text: 'secure',
    });
    // Not trusted without its CA.
    const err = await failure(transport(url).exchange('GET', '/', {}));
    expect(String((err as { code?: string }).code)).toMatch(/CERT|SELF_SIGNED|UNABLE/);
  });

  it('goes through the proxy HTTP_PROXY names, and straight to hosts NO_PROXY lists, as Go providers do', async () => {
    const { seen, url } = await httpServer((_req, res) => res.end('direct'));
    const proxy = await startConnectProxy();
    servers.push(proxy);
    await withEnv({ HTTP_PROXY: proxy.url, NO_PROXY: undefined, no_proxy: undefined }, async () => {
      expect((await transport(url).exchange('GET', '/x', {})).text).toBe('direct');
      expect(proxy.tunnels).toEqual([url.host]);
    });
    await withEnv({ HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1', no_proxy: undefined }, async () => {
      expect((await transport(url).exchange('GET', '/y', {})).text).toBe('direct');
    });
    expect(seen.requests.map((r) => r.url)).toEqual(['/base/x', '/base/y']);
    expect(proxy.tunnels).toHaveLength(1);
  });

  it('tunnels HTTPS through the proxy HTTPS_PROXY names and still verifies the server at the far end', async () => {
    const { cert, url } = await httpsServer();
    const proxy = await startConnectProxy();
    servers.push(proxy);
    await withEnv(
      { HTTPS_PROXY: proxy.url, https_proxy: undefined, NO_PROXY: undefined, no_proxy: undefined },
      async () => {
        const t = transport(url, 5_000, undefined, { ca: cert.certPem });
        expect(await t.exchange('GET', '/', {})).toEqual({ status: 200, text: 'secure' });
        expect(await t.exchange('GET', '/', {})).toEqual({ status: 200, text: 'secure' });
        // One tunnel, kept alive for the second exchange.
        expect(proxy.tunnels).toEqual([url.host]);
        // The proxy is no way around the certificate check.
        const err = await failure(transport(url).exchange('GET', '/', {}));
        expect(String(err.code)).toMatch(/CERT|SELF_SIGNED|UNABLE/);
      },
    );
  });
});

describe('ApiTransport through a proxy', () => {
  const noProxyEnv = {
    https_proxy: undefined,
    http_proxy: undefined,
    NO_PROXY: undefined,
    no_proxy: undefined,
  };

  it("fails when the proxy refuses the tunnel, never passing the proxy's answer off as the API's", async () => {
    const { url } = await httpServer((_req, res) => res.end('{"code":"ok"}'));
    for (const refusal of [
      '407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm="corp"\r\ncontent-length: 0',
      // A 404 taken for the API's would drop a resource from state on refresh, or call a destroy done.
      '404 Not Found\r\ncontent-length: 27\r\n\r\n{"code":"not_found","x":""}',
      '403 Forbidden\r\ncontent-length: 0',
    ]) {
      const seen: string[] = [];
      const proxy = await rawServer((socket) => {
        seen.push('request');
        socket.end(`HTTP/1.1 ${refusal}\r\n\r\n`);
      });
      await withEnv(
        { ...noProxyEnv, HTTP_PROXY: `http://corp-user:pr0xy-s3cret@${proxy.url.host}` },
        async () => {
          const t = transport(url);
          for (const [method, body] of [['GET'], ['PUT', '{}']] as const) {
            const err = await failure(t.exchange(method, '/x', { authorization: 'Bearer t' }, body));
            expect(err.code).toBe(`EPROXY_${refusal.slice(0, 3)}`);
            expect(err.message).toContain(refusal.slice(0, 3));
            expect(err.message).not.toContain('pr0xy-s3cret');
          }
        },
      );
      // Only the CONNECT of each exchange reached the proxy: the request itself (and its token) never did.
      expect(seen).toEqual(['request', 'request']);
    }
  });

  it('reports a proxy that hangs up on CONNECT as a failure of the proxy', async () => {
    const proxy = await rawServer((socket) => socket.end());
    await withEnv({ ...noProxyEnv, HTTP_PROXY: proxy.url.href }, async () => {
      const err = await failure(transport(new URL('http://api.invalid:8080')).exchange('GET', '/', {}));
      expect(err.code).toBe('EPROXY');
      expect(err.message).toBe('the proxy hung up on CONNECT, or answered it with something not HTTP');
    });
  });

  it('keeps the deadline while the proxy leaves CONNECT unanswered', async () => {
    const proxy = await rawServer(() => {});
    await withEnv({ ...noProxyEnv, HTTP_PROXY: proxy.url.href }, async () => {
      const started = performance.now();
      const err = await failure(transport(new URL('http://api.invalid:8080'), 150).exchange('GET', '/', {}));
      expect(err.code).toBe('ETIMEDOUT');
      expect(performance.now() - started).toBeLessThan(2_000);
    });
  });

  it('sends the credentials of the proxy URL to the proxy only, and never logs or reports them', async () => {
    const connects: string[] = [];
    // A proxy that answers CONNECT and then serves the tunnelled request itself.
    const proxy = await rawServer((socket, index, _connection, head) => {
      connects.push(head);
      if (index === 0) socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\ntunnelled');
    });
    // https-proxy-agent's debug log (DEBUG=https-proxy-agent, or DEBUG=*) writes to stderr, which tofu logs.
    const { default: debug } = (await import('debug' as string)) as {
      default: { enable(namespaces: string): void; disable(): string };
    };
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
      written.push(String(chunk));
      return true;
    });
    debug.enable('https-proxy-agent*');
    try {
      await withEnv(
        { ...noProxyEnv, HTTP_PROXY: `http://corp%20user:pr0xy%40s3cret@${proxy.url.host}` },
        async () => {
          const t = transport(new URL('http://api.internal:8080'));
          expect((await t.exchange('GET', '/x', {})).text).toBe('tunnelled');
        },
      );
    } finally {
      debug.disable();
      spy.mockRestore();
    }
    expect(connects[0]).toMatch(/^CONNECT api\.internal:8080 HTTP\/1\.1\r\n/);
    expect(connects[0]).toContain(
      `Proxy-Authorization: Basic ${Buffer.from('corp user:pr0xy@s3cret').toString('base64')}`,
    );
    expect(connects[1]).not.toMatch(/proxy-authorization/i);
    expect(written.join('')).not.toMatch(/pr0xy/);
  });

  it('reports a proxy variable that is not an http(s) URL without echoing it', async () => {
    const { url } = await httpServer((_req, res) => res.end('direct'));
    for (const bad of [
      'http://corp user:pr0xy-s3cret@proxy host:3128',
      'socks5://corp:pr0xy-s3cret@127.0.0.1:1080',
    ]) {
      await withEnv({ ...noProxyEnv, HTTP_PROXY: bad }, async () => {
        const err = await failure(transport(url).exchange('GET', '/', {}));
        expect(err.name).toBe('TransportError');
        expect(err.code).toBe('EPROXY_URL');
        expect(`${err.message} ${JSON.stringify(err)}`).not.toContain('pr0xy-s3cret');
      });
    }
  });

  it('takes a proxy named without a scheme as an http:// proxy, as Go does, for an https endpoint too', async () => {
    const { cert, url } = await httpsServer();
    const proxy = await startConnectProxy();
    servers.push(proxy);
    await withEnv({ ...noProxyEnv, HTTPS_PROXY: new URL(proxy.url).host }, async () => {
      const t = transport(url, 5_000, undefined, { ca: cert.certPem });
      expect(await t.exchange('GET', '/', {})).toEqual({ status: 200, text: 'secure' });
      expect(proxy.tunnels).toEqual([url.host]);
    });
  });

  it('ignores ALL_PROXY, as Go providers and undici do', async () => {
    const { url } = await httpServer((_req, res) => res.end('direct'));
    await withEnv(
      { ...noProxyEnv, HTTP_PROXY: undefined, ALL_PROXY: 'socks5://127.0.0.1:1', all_proxy: undefined },
      async () => {
        expect((await transport(url).exchange('GET', '/', {})).text).toBe('direct');
      },
    );
  });
});

/** Runs `body` with these environment variables set (undefined: unset), then puts them back. */
async function withEnv(vars: Record<string, string | undefined>, body: () => Promise<void>) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) {
      if (value === undefined) delete process.env[k];
      else process.env[k] = value;
    }
  };
  apply(vars);
  try {
    await body();
  } finally {
    apply(saved);
  }
}
