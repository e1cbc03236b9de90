import { ByteWriter } from '../internal/byte-writer.js';

/**
 * A small protocol-buffers codec, driven by message descriptors written in this repo
 * (protocol/messages.ts). The provider needs a few dozen message types, and loading a general
 * protobuf runtime and gRPC library cost more than half of its start-up time; Terraform starts
 * a provider several times per command.
 *
 * Decoded messages use camelCase field names; absent message fields decode as null, absent
 * scalars as their zero value, absent repeated fields as []; unknown fields are skipped.
 */
export type Scalar = 'string' | 'bytes' | 'bool' | 'int64' | 'uint32' | 'enum';
export interface MapType {
  readonly map: readonly [Scalar, FieldType];
}
export type FieldType = Scalar | MessageType | MapType;

export interface Field {
  readonly name: string;
  readonly no: number;
  readonly type: FieldType;
  readonly repeated?: boolean;
}

export interface MessageType {
  readonly message: string;
  readonly fields: readonly Field[];
}

export const message = (name: string, fields: readonly Field[]): MessageType => ({ message: name, fields });

const isMessage = (t: FieldType): t is MessageType => typeof t === 'object' && 'message' in t;
const isMap = (t: FieldType): t is MapType => typeof t === 'object' && 'map' in t;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

// --- encoding ---

/**
 * Writes a whole message into one growing buffer. A nested message reserves one byte for its
 * length, is written in place, and is moved up only when its length needs more bytes: no buffer
 * per field and no copy per nesting level (a plan carries config, prior and planned state, each
 * a nested message, for every resource).
 */
class Writer extends ByteWriter {
  varint(value: number | bigint): void {
    // Keys, lengths and small non-negative numbers (nearly all of them) without BigInt.
    if (typeof value === 'number' && value >= 0 && value <= 0x7fffffff && Number.isInteger(value)) {
      this.room(5);
      let n = value;
      while (n >= 0x80) {
        this.buf[this.pos++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
      this.buf[this.pos++] = n;
      return;
    }
    this.room(10);
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  tag(no: number, wire: number): void {
    this.varint((no << 3) | wire);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(s: string): void {
    const length = Buffer.byteLength(s, 'utf8');
    this.varint(length);
    this.room(length);
    this.pos += this.buf.write(s, this.pos, length, 'utf8');
  }

  /** Starts a length-delimited field whose length is known only once it is written. */
  openLength(): number {
    this.room(1);
    return this.pos++;
  }

  closeLength(at: number): void {
    const length = this.pos - at - 1;
    let extra = 0;
    for (let n = length; n >= 0x80; n >>>= 7) extra++;
    if (extra > 0) {
      this.room(extra);
      this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
      this.pos += extra;
    }
    let n = length;
    let i = at;
    while (n >= 0x80) {
      this.buf[i++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[i] = n;
  }
}

function encodeValue(w: Writer, no: number, type: FieldType, value: unknown): void {
  if (isMessage(type)) {
    w.tag(no, WIRE_LEN);
    const at = w.openLength();
    encodeFields(w, type, value as Record<string, unknown>);
    w.closeLength(at);
    return;
  }
  if (isMap(type)) throw new Error('maps are encoded by their field');
  switch (type) {
    case 'string':
      w.tag(no, WIRE_LEN);
      w.string(String(value));
      return;
    case 'bytes':
      w.tag(no, WIRE_LEN);
      w.bytes(value as Uint8Array);
      return;
    case 'bool':
      w.tag(no, WIRE_VARINT);
      w.varint(value ? 1 : 0);
      return;
    default:
      w.tag(no, WIRE_VARINT);
      w.varint(value as number);
  }
}

/** Proto3: zero values are not written (except inside maps and repeated fields). */
function isDefault(type: FieldType, value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (isMessage(type) || isMap(type)) return false;
  if (type === 'string') return value === '';
  if (type === 'bytes') return (value as Uint8Array).length === 0;
  if (type === 'bool') return value === false;
  return value === 0;
}

function encodeFields(w: Writer, type: MessageType, value: Record<string, unknown> | null | undefined): void {
  if (!value) return;
  for (const f of type.fields) {
    const v = value[f.name];
    if (v === undefined || v === null) continue;
    if (isMap(f.type)) {
      const [kt, vt] = f.type.map;
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        w.tag(f.no, WIRE_LEN);
        const at = w.openLength();
        encodeValue(w, 1, kt, k);
        encodeValue(w, 2, vt, item);
        w.closeLength(at);
      }
    } else if (f.repeated) {
      for (const item of v as unknown[]) encodeValue(w, f.no, f.type, item);
    } else if (!isDefault(f.type, v)) {
      encodeValue(w, f.no, f.type, v);
    }
  }
}

export function encode(type: MessageType, value: Record<string, unknown> | null | undefined): Buffer {
  const w = new Writer();
  encodeFields(w, type, value);
  return w.finish();
}

/**
 * A message with `prefix` bytes left free before it, for a framing header (gRPC's five bytes):
 * the caller writes the header into the same buffer instead of copying the message behind it.
 */
export function encodeAfter(
  prefix: number,
  type: MessageType,
  value: Record<string, unknown> | null | undefined,
): Buffer {
  const w = new Writer(prefix);
  encodeFields(w, type, value);
  return w.finish();
}

// --- decoding ---

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  }

  /**
   * A 32-bit varint (bool, enum, uint32): the low 32 bits, as protobuf reads them, without
   * BigInt. Negative enum values arrive sign-extended to ten bytes.
   */
  varint32(): number {
    let result = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++] as number;
      if (i < 5) result |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw new Error('varint too long');
  }

  /**
   * A varint known to be small (a field key, a length, a bool or enum): plain number arithmetic,
   * no BigInt, which every key and length of every message went through before.
   */
  uint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('varint too long for a key or length');
  }

  bytes(): Buffer {
    const len = this.uint();
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint32();
    else if (wire === WIRE_I64) this.pos += 8;
    else if (wire === WIRE_LEN) this.bytes();
    else if (wire === WIRE_I32) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

/** Absent bytes fields: one empty buffer for all of them (it has nothing to change). */
const EMPTY = Buffer.alloc(0);

function zero(f: Field): unknown {
  if (f.repeated) return [];
  if (isMap(f.type)) return {};
  if (isMessage(f.type)) return null;
  switch (f.type) {
    case 'string':
      return '';
    case 'bytes':
      return EMPTY;
    case 'bool':
      return false;
    default:
      return 0;
  }
}

function decodeScalar(r: Reader, type: Scalar): unknown {
  switch (type) {
    case 'string':
      return r.bytes().toString('utf8');
    case 'bytes':
      // A view into the request, not a copy: the request lives as long as its call does.
      return r.bytes();
    case 'bool':
      return r.varint32() !== 0;
    case 'int64':
      return Number(BigInt.asIntN(64, r.varint()));
    case 'uint32':
      return r.varint32() >>> 0;
    default:
      return r.varint32();
  }
}

function decodeField(r: Reader, type: FieldType): unknown {
  if (isMessage(type)) return decode(type, r.bytes());
  if (isMap(type)) throw new Error('maps are decoded by their field');
  return decodeScalar(r, type);
}

const fieldIndex = new WeakMap<MessageType, Map<number, MessageType['fields'][number]>>();
function fieldsByNumber(type: MessageType): Map<number, MessageType['fields'][number]> {
  let index = fieldIndex.get(type);
  if (!index) {
    index = new Map(type.fields.map((f) => [f.no, f]));
    fieldIndex.set(type, index);
  }
  return index;
}

export function decode(type: MessageType, buf: Buffer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fields) out[f.name] = zero(f);
  const byNo = fieldsByNumber(type);
  const r = new Reader(buf);
  while (!r.done) {
    const key = r.uint();
    const no = key >>> 3;
    const wire = key & 7;
    const f = byNo.get(no);
    if (!f) {
      r.skip(wire);
      continue;
    }
    if (isMap(f.type)) {
      const [kt, vt] = f.type.map;
      const entry = new Reader(r.bytes());
      let k: unknown = kt === 'string' ? '' : 0;
      let v: unknown = null;
      while (!entry.done) {
        const ek = entry.uint();
        if (ek >>> 3 === 1) k = decodeField(entry, kt);
        else if (ek >>> 3 === 2) v = decodeField(entry, vt);
        else entry.skip(ek & 7);
      }
      (out[f.name] as Record<string, unknown>)[String(k)] = v;
    } else if (f.repeated) {
      // Packed repeated scalars are not used by the messages we read.
      (out[f.name] as unknown[]).push(decodeField(r, f.type));
    } else {
      out[f.name] = decodeField(r, f.type);
    }
  }
  return out;
}
