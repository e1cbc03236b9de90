import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeHeaders, HpackDecoder, HpackError, huffmanCodeOf, huffmanDecode } from './hpack.js';
import { ServerConnection, type ServerStream } from './http2.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HPACK', () => {
  // RFC 7541 Appendix C.4: three requests on one connection, Huffman-coded, sharing a table.
  it('decodes the RFC 7541 C.4 request examples in order', () => {
    const decoder = new HpackDecoder();
    expect(decoder.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(decoder.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(decoder.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
  });

  it('derives the RFC 7541 Appendix B Huffman codes from their lengths (the code is canonical)', () => {
    // [symbol, bits, code] as Appendix B lists them
    const rfc: [number, number, number][] = [
      [0, 13, 0x1ff8],
      [10, 30, 0x3ffffffc],
      [32, 6, 0x14],
      [48, 5, 0x0],
      [97, 5, 0x3],
      [127, 28, 0xffffffc],
      [200, 26, 0x3ffffe2],
      [255, 26, 0x3ffffee],
      [256, 30, 0x3fffffff],
    ];
    for (const [symbol, bits, code] of rfc) expect(huffmanCodeOf(symbol)).toEqual({ bits, code });
    // Every byte value, coded by those codes and padded with ones, decodes back.
    const all = Array.from({ length: 256 }, (_, i) => i);
    let acc = 0n;
    let n = 0n;
    for (const symbol of all) {
      const { bits, code } = huffmanCodeOf(symbol);
      acc = (acc << BigInt(bits)) | BigInt(code);
      n += BigInt(bits);
    }
    const pad = (8n - (n % 8n)) % 8n;
    acc = (acc << pad) | ((1n << pad) - 1n);
    const bytes = Buffer.from(acc.toString(16).padStart(Number((n + pad) / 4n), '0'), 'hex');
    expect([...Buffer.from(huffmanDecode(bytes, 0, bytes.length), 'latin1')]).toEqual(all);
    // End-of-string inside a string is refused.
    expect(() => huffmanDecode(Buffer.from('ffffffff', 'hex'), 0, 4)).toThrow(/end-of-string/);
  });

  it('refuses bad padding, unknown indexes and truncated blocks', () => {
    // "www.example.com" with a zero bit in its padding.
    expect(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4fe'), 0, 12)).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(hex('be'))).toThrow(/not in the table/);
    expect(() => new HpackDecoder().decode(hex('40 05 6162'))).toThrow(/truncated/);
    // A table size update above the limit we advertised.
    expect(() => new HpackDecoder(4096).decode(hex('3f e1 3f'))).toThrow(/above the limit/);
  });

  it('evicts the oldest entries when the table is full', () => {
    const decoder = new HpackDecoder(100);
    const literal = (name: string, value: string) =>
      Buffer.concat([
        Buffer.from([0x40, name.length]),
        Buffer.from(name),
        Buffer.from([value.length]),
        Buffer.from(value),
      ]);
    // Each entry is 1 + 20 + 32 = 53 octets: the second insert evicts the first.
    decoder.decode(literal('a', 'x'.repeat(20)));
    decoder.decode(literal('b', 'y'.repeat(20)));
    expect(decoder.decode(hex('be'))).toEqual([['b', 'y'.repeat(20)]]);
    expect(() => decoder.decode(hex('bf'))).toThrow(/not in the table/);
  });

  it('encodes what our own decoder (and the static table) read back', () => {
    const fields = [
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '13'],
      ['grpc-message', 'x'.repeat(300)],
    ] as const;
    expect(new HpackDecoder().decode(encodeHeaders(fields))).toEqual(fields);
    expect(encodeHeaders([[':status', '200']])).toEqual(hex('88'));
  });
});

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((ok) => s.close(() => ok()))));
});

async function listen(server: net.Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** One request with node's own HTTP/2 client (nghttp2: Huffman strings, an indexing encoder). */
function call(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
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

describe('HTTP/2 server', () => {
  it('serves many streams with changing headers to node:http2, and large answers under flow control', async () => {
    const big = randomBytes(300_000);
    const url = await listen(
      net.createServer((socket) => {
        new ServerConnection(
          socket,
          {
            headers(stream: ServerStream, fields) {
              stream.state = fields;
            },
            end(stream: ServerStream) {
              const fields = stream.state as [string, string][];
              const path = fields.find(([n]) => n === ':path')?.[1] ?? '';
              const echo = fields.find(([n]) => n === 'x-echo')?.[1] ?? '';
              stream.respond(encodeHeaders([[':status', '200']]));
              stream.finish(
                path === '/big' ? big : Buffer.from(`${path} ${echo}`),
                encodeHeaders([['x-done', 'yes']]),
              );
            },
          },
          (err) => {
            throw err;
          },
        );
      }),
    );
    const session = http2.connect(url);
    try {
      // Values that change per request fill and cycle the client's dynamic table.
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          call(session, { ':path': `/svc/Method${i % 7}`, 'x-echo': `value-${i}-${'z'.repeat(i % 50)}` }),
        ),
      );
      answers.forEach((a, i) => {
        expect(a.headers[':status']).toBe(200);
        expect(a.body.toString()).toBe(`/svc/Method${i % 7} value-${i}-${'z'.repeat(i % 50)}`);
        expect(a.trailers['x-done']).toBe('yes');
      });
      // Larger than the client's 65,535-byte windows: sent in steps as it opens them.
      const large = await call(session, { ':path': '/big' });
      expect(large.body.equals(big)).toBe(true);
    } finally {
      session.close();
    }
  });

  it('answers PING and closes with GOAWAY on a connection that does not speak HTTP/2', async () => {
    const errors: Error[] = [];
    const url = await listen(
      net.createServer((socket) => {
        new ServerConnection(socket, { headers: () => {} }, (err) => errors.push(err));
      }),
    );
    const session = http2.connect(url);
    await new Promise((ok) => session.once('connect', ok));
    const rtt = await new Promise<number>((ok, fail) =>
      session.ping((err, ms) => (err ? fail(err) : ok(ms))),
    );
    expect(rtt).toBeGreaterThanOrEqual(0);
    session.close();

    const { port } = new URL(url);
    const answer = await new Promise<Buffer>((ok) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\n\r\n'));
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('close', () => ok(Buffer.concat(chunks)));
    });
    expect(errors.map((e) => e.message)).toEqual(['the client did not open with the HTTP/2 preface']);
    // Our SETTINGS, the connection WINDOW_UPDATE, then GOAWAY (type 7).
    const types: number[] = [];
    for (let at = 0; at + 9 <= answer.length; at += 9 + answer.readUIntBE(at, 3)) types.push(answer[at + 3]!);
    expect(types).toEqual([4, 8, 7]);
  });
});

/** A client that writes frames by hand, for what node's client never sends. */
class RawClient {
  private input = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  readonly frames: { type: number; flags: number; id: number; payload: Buffer }[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.input = Buffer.concat([this.input, chunk]);
      while (this.input.length >= 9) {
        const length = this.input.readUIntBE(0, 3);
        if (this.input.length < 9 + length) break;
        this.frames.push({
          type: this.input[3]!,
          flags: this.input[4]!,
          id: this.input.readUInt32BE(5) & 0x7fffffff,
          payload: this.input.subarray(9, 9 + length),
        });
        this.input = this.input.subarray(9 + length);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  }

  send(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)) {
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(id, 5);
    this.socket.write(Buffer.concat([head, payload]));
  }

  /** Waits until a frame matching `match` has arrived. */
  async until(match: (f: RawClient['frames'][number]) => boolean) {
    while (!this.frames.some(match)) await new Promise<void>((ok) => this.waiters.push(ok));
  }

  on(id: number) {
    return this.frames.filter((f) => f.id === id);
  }
}

describe('HTTP/2 server, frame by frame', () => {
  it('reads padded, prioritised and continued header blocks, keeps to a small stream window, and drops reset streams', async () => {
    const ended: number[] = [];
    const answer = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    const url = await listen(
      net.createServer((socket) => {
        new ServerConnection(
          socket,
          {
            headers(stream, fields) {
              stream.state = fields;
            },
            end(stream) {
              ended.push(stream.id);
              stream.respond(encodeHeaders([[':status', '200']]));
              stream.finish(answer, encodeHeaders([['grpc-status', '0']]));
            },
          },
          (err) => {
            throw err;
          },
        );
      }),
    );
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const client = new RawClient(socket);
    try {
      // A stream window of 10 bytes: answers must wait for WINDOW_UPDATE.
      const settings = Buffer.alloc(6);
      settings.writeUInt16BE(0x4, 0);
      settings.writeUInt32BE(10, 2);
      client.send(4, 0, 0, settings);

      const block = encodeHeaders([
        [':method', 'POST'],
        [':path', '/svc/Method'],
        ['content-type', 'application/grpc'],
      ]);
      // HEADERS with 3 bytes of padding and priority fields, END_STREAM but not END_HEADERS;
      // the rest of the block in a CONTINUATION.
      const first = Buffer.concat([
        Buffer.from([3]),
        Buffer.from([0, 0, 0, 0, 16]),
        block.subarray(0, 4),
        Buffer.alloc(3),
      ]);
      client.send(1, 0x1 | 0x8 | 0x20, 1, first);
      client.send(9, 0x4, 1, block.subarray(4));
      await client.until((f) => f.id === 1 && f.type === 0);
      expect(ended).toEqual([1]);
      const data = () =>
        Buffer.concat(
          client
            .on(1)
            .filter((f) => f.type === 0)
            .map((f) => f.payload),
        );
      expect(data().toString()).toBe('0123456789');
      expect(client.on(1).some((f) => f.type === 1 && f.flags & 0x1)).toBe(false);

      // More window: the rest, then the trailers that end the stream.
      const more = Buffer.alloc(4);
      more.writeUInt32BE(100, 0);
      client.send(8, 0, 1, more);
      await client.until((f) => f.id === 1 && f.type === 1 && (f.flags & 0x1) === 1);
      expect(data().equals(answer)).toBe(true);

      // A stream reset before it ends is dropped: its call never runs.
      client.send(1, 0x4, 3, block);
      const cancel = Buffer.alloc(4);
      cancel.writeUInt32BE(0x8, 0);
      client.send(3, 0, 3, cancel);
      client.send(0, 0x1, 3, Buffer.alloc(0));
      // A PING answered after them shows they were processed.
      client.send(6, 0, 0, Buffer.from('12345678'));
      await client.until((f) => f.type === 6 && (f.flags & 0x1) === 1);
      expect(ended).toEqual([1]);
      expect(client.on(3)).toEqual([]);
    } finally {
      socket.destroy();
    }
  });
});
