import type { Socket } from 'node:net';
import { ByteWriter } from '../internal/byte-writer.js';
import { MAX_CONCURRENT_STREAMS } from './grpc-common.js';
import { type HeaderField, HpackDecoder } from './hpack.js';

/**
 * The server side of HTTP/2 (RFC 9113), as much as a gRPC plugin server needs: streams opened by
 * the client, header blocks (with CONTINUATION), DATA both ways under flow control, SETTINGS,
 * PING, WINDOW_UPDATE, RST_STREAM and GOAWAY. No server push, no priorities (ignored).
 *
 * Why not node:http2: Terraform makes one RPC per resource per step, thousands per plan, and each
 * node:http2 stream is a Duplex with its own events, header objects and callbacks through
 * nghttp2. Here a stream is a small record, and an answer (headers, message, trailers) leaves in
 * one socket write.
 */

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const FRAME_SIZE_ERROR = 0x6;
const REFUSED_STREAM = 0x7;
const COMPRESSION_ERROR = 0x9;

const MAX_WINDOW = 2 ** 31 - 1;
const DEFAULT_WINDOW = 65_535;
/** We never raise SETTINGS_MAX_FRAME_SIZE, so the client's frames stay within the default. */
const MAX_FRAME = 16_384;
/** A bound on one request's header block: gRPC's are a few hundred bytes. */
const MAX_HEADER_BLOCK = 64 * 1024;
/** CONTINUATION frames per header block: an empty one would otherwise cost nothing to repeat. */
const MAX_CONTINUATIONS = 64;
/** The connection receive window is topped up once this much has been consumed. */
const WINDOW_TOP_UP = 1 << 24;

export class Http2ProtocolError extends Error {
  constructor(
    message: string,
    readonly code = PROTOCOL_ERROR,
  ) {
    super(message);
  }
}

export interface StreamHandler {
  /** The request's header block is complete. */
  headers(stream: ServerStream, fields: HeaderField[]): void;
  data?(stream: ServerStream, chunk: Buffer): void;
  /** The client has sent all it will send (END_STREAM). */
  end?(stream: ServerStream): void;
}

export class ServerStream {
  /** Set by whoever handles the stream. */
  state: unknown;
  sendWindow: number;
  remoteEnded = false;
  localEnded = false;
  pendingData: Buffer | undefined;
  pendingTrailers: Buffer | undefined;
  /** Runs once the trailers have been written to the socket. */
  afterTrailers: (() => void) | undefined;

  constructor(
    readonly connection: ServerConnection,
    readonly id: number,
  ) {
    this.sendWindow = connection.peerInitialWindow;
  }

  get open(): boolean {
    return this.connection.has(this);
  }

  /** Response headers (an encoded header block); `end` for a trailers-only answer. */
  respond(block: Buffer, end = false): void {
    this.connection.sendHeaders(this, block, end);
  }

  /**
   * Message bytes, then the trailers that end the stream; sent as flow control allows.
   * `written` runs once the trailers are out, not merely queued.
   */
  finish(data: Buffer | undefined, trailers: Buffer, written?: () => void): void {
    this.pendingData = data && data.length > 0 ? data : undefined;
    this.pendingTrailers = trailers;
    this.afterTrailers = written;
    this.connection.flushStream(this);
  }
}

/** One client connection: frames in, frames out. */
export class ServerConnection {
  peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = MAX_FRAME;
  private sendWindow = DEFAULT_WINDOW;
  private consumed = 0;
  private readonly streams = new Map<number, ServerStream>();
  private readonly blocked = new Set<ServerStream>();
  private readonly decoder = new HpackDecoder();
  private lastStreamId = 0;
  private input: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private failed = false;
  /** A header block being continued: its stream, its parts, and whether it ends the stream. */
  private continuing: { id: number; parts: Buffer[]; size: number; end: boolean } | undefined;
  private output = new FrameOutput();
  private afterFlush: (() => void)[] = [];
  private flushQueued = false;

  constructor(
    private readonly socket: Socket,
    private readonly handler: StreamHandler,
    private readonly onError: (err: Error) => void,
  ) {
    // Our settings: stream windows as large as allowed, so requests never wait on us; then the
    // connection window likewise (it can only be raised by WINDOW_UPDATE).
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0);
    settings.writeUInt32BE(MAX_WINDOW, 2);
    settings.writeUInt16BE(SETTINGS_MAX_CONCURRENT_STREAMS, 6);
    settings.writeUInt32BE(MAX_CONCURRENT_STREAMS, 8);
    this.frame(SETTINGS, 0, 0, settings);
    this.windowUpdate(0, MAX_WINDOW - DEFAULT_WINDOW);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.streams.clear();
      this.blocked.clear();
    });
  }

  has(stream: ServerStream): boolean {
    return this.streams.get(stream.id) === stream;
  }

  private receive(chunk: Buffer) {
    if (this.failed) return;
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    try {
      if (!this.prefaceSeen) {
        const n = Math.min(this.input.length, PREFACE.length);
        if (!this.input.subarray(0, n).equals(PREFACE.subarray(0, n))) {
          throw new Http2ProtocolError('the client did not open with the HTTP/2 preface');
        }
        if (n < PREFACE.length) return;
        this.prefaceSeen = true;
        this.input = this.input.subarray(PREFACE.length);
      }
      let at = 0;
      while (this.input.length - at >= 9) {
        const length = this.input.readUIntBE(at, 3);
        if (length > MAX_FRAME) throw new Http2ProtocolError('frame larger than allowed', FRAME_SIZE_ERROR);
        if (this.input.length - at < 9 + length) break;
        const type = this.input[at + 3] as number;
        const flags = this.input[at + 4] as number;
        const id = this.input.readUInt32BE(at + 5) & 0x7fffffff;
        this.onFrame(type, flags, id, this.input.subarray(at + 9, at + 9 + length));
        at += 9 + length;
      }
      this.input = at === this.input.length ? Buffer.alloc(0) : this.input.subarray(at);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A connection error: GOAWAY with its code, then the socket goes. */
  private fail(err: Error) {
    this.failed = true;
    this.onError(err);
    const body = Buffer.alloc(8);
    body.writeUInt32BE(this.lastStreamId, 0);
    body.writeUInt32BE(err instanceof Http2ProtocolError ? err.code : PROTOCOL_ERROR, 4);
    this.frame(GOAWAY, 0, 0, body);
    this.flush();
    this.socket.end();
    this.streams.clear();
    this.blocked.clear();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer) {
    if (this.continuing && type !== CONTINUATION) {
      throw new Http2ProtocolError('a header block was interrupted by another frame');
    }
    switch (type) {
      case DATA:
        return this.onData(flags, id, payload);
      case HEADERS:
        return this.onHeaders(flags, id, payload);
      case CONTINUATION:
        return this.onContinuation(flags, id, payload);
      case RST_STREAM:
        this.close(id);
        return;
      case SETTINGS:
        return this.onSettings(flags, id, payload);
      case PING:
        if (id !== 0 || payload.length !== 8) throw new Http2ProtocolError('malformed PING');
        if (!(flags & ACK)) this.frame(PING, ACK, 0, payload);
        return;
      case WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case GOAWAY:
        // The client is going; it closes the socket when its streams are done.
        return;
      case PUSH_PROMISE:
        throw new Http2ProtocolError('a client may not push');
      default:
        // PRIORITY and unknown frame types are ignored (RFC 9113 sections 5.5 and 6.3).
        return;
    }
  }

  /** Strips padding (and the priority fields of HEADERS). */
  private body(flags: number, payload: Buffer, priority: boolean): Buffer {
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      const pad = payload[0] ?? 0;
      start = 1;
      end -= pad;
    }
    if (priority) start += 5;
    if (end < start) throw new Http2ProtocolError('padding longer than the frame');
    return payload.subarray(start, end);
  }

  private onHeaders(flags: number, id: number, payload: Buffer) {
    if (id === 0 || id % 2 === 0) throw new Http2ProtocolError('HEADERS on a stream a client cannot open');
    const block = this.body(flags, payload, (flags & PRIORITY) !== 0);
    const end = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) this.headerBlock(id, block, end);
    else this.continuing = { id, parts: [Buffer.from(block)], size: block.length, end };
  }

  private onContinuation(flags: number, id: number, payload: Buffer) {
    const c = this.continuing;
    if (!c || c.id !== id) throw new Http2ProtocolError('CONTINUATION without a header block to continue');
    c.parts.push(Buffer.from(payload));
    c.size += payload.length;
    if (c.size > MAX_HEADER_BLOCK || c.parts.length > MAX_CONTINUATIONS) {
      throw new Http2ProtocolError('header block too large');
    }
    if (flags & END_HEADERS) {
      this.continuing = undefined;
      this.headerBlock(id, Buffer.concat(c.parts), c.end);
    }
  }

  private headerBlock(id: number, block: Buffer, end: boolean) {
    let fields: HeaderField[];
    try {
      fields = this.decoder.decode(block);
    } catch (err) {
      // A decoding error leaves the table out of step with the client: the connection is done.
      throw new Http2ProtocolError(`header block: ${(err as Error).message}`, COMPRESSION_ERROR);
    }
    const known = this.streams.get(id);
    if (known) {
      // Trailers from the client: gRPC clients send none, but they end the stream if they come.
      if (end) this.remoteEnd(known);
      return;
    }
    if (id <= this.lastStreamId) return; // a stream already closed
    this.lastStreamId = id;
    if (this.streams.size >= MAX_CONCURRENT_STREAMS) {
      // Over what we advertised: refused, which tells the client it may simply try again.
      const code = Buffer.alloc(4);
      code.writeUInt32BE(REFUSED_STREAM, 0);
      this.frame(RST_STREAM, 0, id, code);
      return;
    }
    const stream = new ServerStream(this, id);
    this.streams.set(id, stream);
    this.handler.headers(stream, fields);
    if (end) this.remoteEnd(stream);
  }

  private onData(flags: number, id: number, payload: Buffer) {
    if (id === 0) throw new Http2ProtocolError('DATA on stream 0');
    // Flow control counts the whole frame, padding included, whatever becomes of the stream.
    this.consumed += payload.length;
    if (this.consumed >= WINDOW_TOP_UP) {
      this.windowUpdate(0, this.consumed);
      this.consumed = 0;
    }
    const stream = this.streams.get(id);
    if (!stream || stream.remoteEnded) return;
    const data = this.body(flags, payload, false);
    if (data.length > 0) this.handler.data?.(stream, data);
    if (flags & END_STREAM) this.remoteEnd(stream);
  }

  private remoteEnd(stream: ServerStream) {
    // A stream ends once: a second END_STREAM must not run its call again.
    if (stream.remoteEnded) return;
    stream.remoteEnded = true;
    this.handler.end?.(stream);
    if (stream.localEnded) this.close(stream.id);
  }

  private onSettings(flags: number, id: number, payload: Buffer) {
    if (id !== 0) throw new Http2ProtocolError('SETTINGS on a stream');
    if (flags & ACK) return;
    if (payload.length % 6 !== 0) throw new Http2ProtocolError('malformed SETTINGS', FRAME_SIZE_ERROR);
    for (let at = 0; at < payload.length; at += 6) {
      const key = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (key === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new Http2ProtocolError('window too large', FLOW_CONTROL_ERROR);
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
      } else if (key === SETTINGS_MAX_FRAME_SIZE) {
        if (value < MAX_FRAME || value > 2 ** 24 - 1)
          throw new Http2ProtocolError('bad SETTINGS_MAX_FRAME_SIZE');
        this.peerMaxFrame = value;
      }
      // Header table size (our encoder keeps no table), push, concurrency and header list size
      // need nothing from a server like this one.
    }
    this.frame(SETTINGS, ACK, 0, Buffer.alloc(0));
    this.unblock();
  }

  private onWindowUpdate(id: number, payload: Buffer) {
    if (payload.length !== 4) throw new Http2ProtocolError('malformed WINDOW_UPDATE', FRAME_SIZE_ERROR);
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new Http2ProtocolError('window overflow', FLOW_CONTROL_ERROR);
      this.unblock();
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) return;
    stream.sendWindow += increment;
    this.flushStream(stream);
  }

  private unblock() {
    for (const stream of [...this.blocked]) this.flushStream(stream);
  }

  sendHeaders(stream: ServerStream, block: Buffer, end: boolean) {
    if (!this.has(stream)) return;
    this.frame(HEADERS, END_HEADERS | (end ? END_STREAM : 0), stream.id, block);
    if (end) this.localEnd(stream);
  }

  /** Sends what the windows allow of a stream's pending data, then its trailers. */
  flushStream(stream: ServerStream) {
    if (!this.has(stream)) {
      this.blocked.delete(stream);
      return;
    }
    let data = stream.pendingData;
    while (data && data.length > 0) {
      const n = Math.min(data.length, stream.sendWindow, this.sendWindow, this.peerMaxFrame);
      if (n <= 0) {
        stream.pendingData = data;
        this.blocked.add(stream);
        return;
      }
      this.frame(DATA, 0, stream.id, data.subarray(0, n));
      data = data.subarray(n);
      stream.sendWindow -= n;
      this.sendWindow -= n;
    }
    stream.pendingData = undefined;
    this.blocked.delete(stream);
    const trailers = stream.pendingTrailers;
    if (trailers) {
      stream.pendingTrailers = undefined;
      this.frame(HEADERS, END_HEADERS | END_STREAM, stream.id, trailers);
      if (stream.afterTrailers) this.afterWrite(stream.afterTrailers);
      this.localEnd(stream);
    }
  }

  private localEnd(stream: ServerStream) {
    stream.localEnded = true;
    if (stream.remoteEnded) this.close(stream.id);
  }

  private close(id: number) {
    const stream = this.streams.get(id);
    if (!stream) return;
    this.streams.delete(id);
    this.blocked.delete(stream);
  }

  private windowUpdate(id: number, increment: number) {
    const body = Buffer.alloc(4);
    body.writeUInt32BE(increment, 0);
    this.frame(WINDOW_UPDATE, 0, id, body);
  }

  /**
   * Queues a frame. Everything queued in this turn of the event loop leaves in one write, after
   * the socket reads of the turn: answers to requests that arrived in several reads share a
   * write (half as many writes per plan as flushing after each read).
   */
  private frame(type: number, flags: number, id: number, payload: Buffer) {
    this.output.frame(type, flags, id, payload);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  /** Runs `callback` once everything queued so far has been written to the socket. */
  afterWrite(callback: () => void) {
    this.afterFlush.push(callback);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  private flush() {
    this.flushQueued = false;
    const callbacks = this.afterFlush;
    this.afterFlush = [];
    const done = () => {
      for (const callback of callbacks) callback();
    };
    if (this.output.pos === 0 || this.socket.destroyed) {
      this.output.pos = 0;
      done();
      return;
    }
    // A fresh buffer for the next turn: the socket may hold on to this one until it is written.
    const out = this.output.finish();
    this.output = new FrameOutput();
    this.socket.write(out, callbacks.length > 0 ? done : undefined);
  }
}

/** Frames queued for the next write, headers and payloads copied into one buffer as they come. */
class FrameOutput extends ByteWriter {
  frame(type: number, flags: number, id: number, payload: Buffer): void {
    this.room(9 + payload.length);
    const b = this.buf;
    const at = this.pos;
    const length = payload.length;
    b[at] = length >>> 16;
    b[at + 1] = (length >>> 8) & 0xff;
    b[at + 2] = length & 0xff;
    b[at + 3] = type;
    b[at + 4] = flags;
    b[at + 5] = (id >>> 24) & 0x7f;
    b[at + 6] = (id >>> 16) & 0xff;
    b[at + 7] = (id >>> 8) & 0xff;
    b[at + 8] = id & 0xff;
    payload.copy(b, at + 9);
    this.pos = at + 9 + length;
  }
}
