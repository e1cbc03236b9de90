import { ByteWriter } from '../internal/byte-writer.js';

/**
 * Terraform's values (cty) on the wire: msgpack, read and written straight into and out of
 * values, guided by the schema's types (no general msgpack library and no intermediate object
 * tree: every value of a plan passes through here, in every provider process). Null is nil; an
 * unknown value is a msgpack extension (code 0 when we write it; any code, including the
 * "refined unknown" code 12, reads as unknown).
 */
export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | 'dynamic'
  | readonly ['list' | 'set' | 'map', CtyType]
  | readonly ['object', Readonly<Record<string, CtyType>>]
  | readonly ['tuple', readonly CtyType[]];

export const UNKNOWN: unique symbol = Symbol('unknown');
export type Unknown = typeof UNKNOWN;
export type Value = null | Unknown | string | number | boolean | Value[] | { [name: string]: Value };

export const isUnknown = (v: unknown): v is Unknown => v === UNKNOWN;

/** True when the value or anything inside it is unknown. */
export function containsUnknown(v: Value): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v !== null && typeof v === 'object') return Object.values(v).some(containsUnknown);
  return false;
}

export class ValueError extends Error {}

// --- msgpack formats (the msgpack specification's first bytes) ---
const NIL = 0xc0;
const FALSE = 0xc2;
const TRUE = 0xc3;

/** Unknown attributes are skipped however they are built, but not without end. */
const MAX_SKIP_DEPTH = 256;

/** A map's keys are anyone's strings: "__proto__" is an entry like any other, not a prototype. */
function setEntry(out: Record<string, Value>, key: string, value: Value): void {
  if (key === '__proto__')
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/**
 * An object type's attributes, worked out once per type: every state, config and plan of a
 * resource is an object of the same few types. Keys are kept as the msgpack strings they travel
 * as, so the reader recognises a key by its bytes (without making a string of it) and the
 * writer copies it.
 */
interface ObjectLayout {
  /** In the order cty writes them: Go's byte-wise sort of the names. */
  readonly sorted: readonly { name: string; type: CtyType; key: Buffer }[];
  /** In the order the type declares them, as our writer writes them. */
  readonly declared: readonly { name: string; type: CtyType; key: Buffer }[];
}
const layouts = new WeakMap<object, ObjectLayout>();

function msgpackString(s: string): Buffer {
  const w = new Writer();
  w.string(s);
  return Buffer.from(w.finish());
}

function layoutOf(attrs: Readonly<Record<string, CtyType>>): ObjectLayout {
  let layout = layouts.get(attrs);
  if (!layout) {
    const declared = Object.entries(attrs).map(([name, type]) => ({ name, type, key: msgpackString(name) }));
    const sorted = [...declared].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    layout = { sorted, declared };
    layouts.set(attrs, layout);
  }
  return layout;
}

/** Where in the value a reader or writer is, for error messages: `.attr` and `[i]` steps. */
type Path = readonly (string | number)[];
const describe = (path: Path) => path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');

/**
 * Node's Buffer has long had `utf8Slice`, which `toString('utf8', start, end)` ends in after
 * checking its arguments: called directly, half the cost per string (every attribute name and
 * value of every state read). Not in Node's documentation, so used only where it is there.
 */
const nativeUtf8Slice = (Buffer.prototype as { utf8Slice?: (start: number, end: number) => string })
  .utf8Slice;
const utf8Slice = (buf: Buffer, start: number, end: number): string =>
  nativeUtf8Slice ? nativeUtf8Slice.call(buf, start, end) : buf.toString('utf8', start, end);

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  fail(path: Path, what: string): never {
    throw new ValueError(`${describe(path)}: ${what}`);
  }

  private need(n: number, path: Path): void {
    if (this.pos + n > this.buf.length) this.fail(path, 'truncated msgpack value');
  }

  byte(path: Path): number {
    this.need(1, path);
    return this.buf[this.pos++] as number;
  }

  /** A big-endian integer of 1, 2, 4 or 8 bytes (8-byte ones beyond 2^53 lose precision, as in JSON). */
  integer(bytes: 1 | 2 | 4 | 8, signed: boolean, path: Path): number {
    this.need(bytes, path);
    const at = this.pos;
    this.pos += bytes;
    if (bytes === 8) return Number(signed ? this.buf.readBigInt64BE(at) : this.buf.readBigUInt64BE(at));
    return signed ? this.buf.readIntBE(at, bytes) : this.buf.readUIntBE(at, bytes);
  }

  uint(bytes: 1 | 2 | 4 | 8, path: Path): number {
    return this.integer(bytes, false, path);
  }

  /** A UTF-8 string of `length` bytes, decoded in place. */
  text(length: number, path: Path): string {
    this.need(length, path);
    const out = utf8Slice(this.buf, this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  bytes(length: number, path: Path): Buffer {
    this.need(length, path);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** The length of a str or bin at format byte `b`, or -1 when it is neither. */
  stringLength(b: number, path: Path): number {
    if ((b & 0xe0) === 0xa0) return b & 0x1f;
    if (b === 0xd9 || b === 0xc4) return this.uint(1, path);
    if (b === 0xda || b === 0xc5) return this.uint(2, path);
    if (b === 0xdb || b === 0xc6) return this.uint(4, path);
    return -1;
  }

  /** The element count of an array at format byte `b`, or -1. */
  arrayLength(b: number, path: Path): number {
    if ((b & 0xf0) === 0x90) return b & 0x0f;
    if (b === 0xdc) return this.uint(2, path);
    if (b === 0xdd) return this.uint(4, path);
    return -1;
  }

  /** The entry count of a map at format byte `b`, or -1. */
  mapLength(b: number, path: Path): number {
    if ((b & 0xf0) === 0x80) return b & 0x0f;
    if (b === 0xde) return this.uint(2, path);
    if (b === 0xdf) return this.uint(4, path);
    return -1;
  }

  /** Skips an extension's payload at format byte `b`; false when `b` is not an extension. */
  skipExtension(b: number, path: Path): boolean {
    const fixed = b >= 0xd4 && b <= 0xd8 ? 1 << (b - 0xd4) : -1;
    let length = fixed;
    if (b === 0xc7) length = this.uint(1, path);
    else if (b === 0xc8) length = this.uint(2, path);
    else if (b === 0xc9) length = this.uint(4, path);
    if (length < 0) return false;
    this.bytes(length + 1, path); // the type byte, then the data
    return true;
  }

  /** A number in any of msgpack's integer or float formats; undefined when `b` is none of them. */
  number(b: number, path: Path): number | undefined {
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xcc:
        return this.uint(1, path);
      case 0xcd:
        return this.uint(2, path);
      case 0xce:
        return this.uint(4, path);
      case 0xcf:
        return this.uint(8, path);
      case 0xd0:
        return this.integer(1, true, path);
      case 0xd1:
        return this.integer(2, true, path);
      case 0xd2:
        return this.integer(4, true, path);
      case 0xd3:
        return this.integer(8, true, path);
      case 0xca: {
        this.need(4, path);
        const v = this.buf.readFloatBE(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xcb: {
        this.need(8, path);
        const v = this.buf.readDoubleBE(this.pos);
        this.pos += 8;
        return v;
      }
      default:
        return undefined;
    }
  }

  /** Skips one value of any kind (an attribute the schema does not know). */
  skip(path: Path, depth = 0): void {
    if (depth > MAX_SKIP_DEPTH) this.fail(path, 'msgpack value nested too deeply');
    const b = this.byte(path);
    if (b === NIL || b === FALSE || b === TRUE || this.number(b, path) !== undefined) return;
    if (this.skipExtension(b, path)) return;
    const s = this.stringLength(b, path);
    if (s >= 0) {
      this.bytes(s, path);
      return;
    }
    const a = this.arrayLength(b, path);
    if (a >= 0) {
      for (let i = 0; i < a; i++) this.skip(path, depth + 1);
      return;
    }
    const m = this.mapLength(b, path);
    if (m < 0) this.fail(path, `unsupported msgpack format 0x${b.toString(16)}`);
    for (let i = 0; i < 2 * m; i++) this.skip(path, depth + 1);
  }

  value(type: CtyType, path: (string | number)[]): Value {
    const b = this.byte(path);
    if (b === NIL) return null;
    if (this.skipExtension(b, path)) return UNKNOWN;
    if (type === 'dynamic') {
      // [type as JSON bytes, value]
      if (this.arrayLength(b, path) !== 2) this.fail(path, 'malformed dynamic value');
      const length = this.stringLength(this.byte(path), path);
      if (length < 0) this.fail(path, 'malformed dynamic value');
      const actual = JSON.parse(this.text(length, path)) as CtyType;
      return this.value(actual, path);
    }
    if (type === 'string') {
      const length = b >= 0xc4 && b <= 0xc6 ? -1 : this.stringLength(b, path);
      if (length < 0) this.fail(path, 'expected a string');
      return this.text(length, path);
    }
    if (type === 'number') {
      const n = this.number(b, path);
      if (n !== undefined) return n;
      // Numbers too precise for a float travel as decimal strings.
      const length = this.stringLength(b, path);
      const text = length >= 0 ? this.text(length, path) : '';
      if (text.trim() === '' || Number.isNaN(Number(text))) this.fail(path, 'expected a number');
      return Number(text);
    }
    if (type === 'bool') {
      if (b !== TRUE && b !== FALSE) this.fail(path, 'expected a bool');
      return b === TRUE;
    }
    const [kind, inner] = type;
    if (kind === 'list' || kind === 'set' || kind === 'tuple') {
      const count = this.arrayLength(b, path);
      if (count < 0) this.fail(path, `expected a ${kind}`);
      // Each element takes a byte at least: a count beyond the bytes left is a truncated value.
      this.need(count, path);
      const out: Value[] = new Array(count);
      for (let i = 0; i < count; i++) {
        const t = kind === 'tuple' ? ((inner as readonly CtyType[])[i] ?? 'dynamic') : (inner as CtyType);
        path.push(i);
        out[i] = this.value(t, path);
        path.pop();
      }
      return out;
    }
    const count = this.mapLength(b, path);
    if (count < 0) this.fail(path, `expected a ${kind}`);
    this.need(2 * count, path);
    const out: Record<string, Value> = {};
    if (kind !== 'object') {
      for (let i = 0; i < count; i++) {
        const keyLength = this.stringLength(this.byte(path), path);
        if (keyLength < 0) this.fail(path, `expected string keys in a ${kind}`);
        const key = this.text(keyLength, path);
        path.push(key);
        setEntry(out, key, this.value(inner as CtyType, path));
        path.pop();
      }
      return out;
    }
    const attrs = inner as Readonly<Record<string, CtyType>>;
    const { sorted } = layoutOf(attrs);
    // Keys come in cty's order, so each is first checked against the attribute expected next.
    let next = 0;
    let inOrder = true;
    for (let i = 0; i < count; i++) {
      const expected = sorted[next];
      let name: string;
      let t: CtyType | undefined;
      if (expected && this.startsWith(expected.key)) {
        this.pos += expected.key.length;
        name = expected.name;
        t = expected.type;
        next++;
      } else {
        inOrder = false;
        const keyLength = this.stringLength(this.byte(path), path);
        if (keyLength < 0) this.fail(path, `expected string keys in a ${kind}`);
        name = this.text(keyLength, path);
        t = Object.hasOwn(attrs, name) ? attrs[name] : undefined;
      }
      path.push(name);
      if (t === undefined) this.skip(path);
      else setEntry(out, name, this.value(t, path));
      path.pop();
    }
    // Objects carry every attribute of their type, null when absent.
    if (!inOrder || next < sorted.length) {
      for (const name in attrs) if (!Object.hasOwn(out, name)) setEntry(out, name, null);
    }
    return out;
  }

  /** Whether the bytes at the read position begin with `bytes`. */
  private startsWith(bytes: Buffer): boolean {
    if (this.pos + bytes.length > this.buf.length) return false;
    for (let i = 0; i < bytes.length; i++) if (this.buf[this.pos + i] !== bytes[i]) return false;
    return true;
  }
}

class Writer extends ByteWriter {
  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** A first byte, then `value` in `bytes` bytes, big-endian. */
  head(first: number, bytes: 0 | 1 | 2 | 4, value: number): void {
    this.room(1 + bytes);
    this.buf[this.pos++] = first;
    if (bytes === 1) this.buf[this.pos++] = value;
    else if (bytes === 2) this.pos = this.buf.writeUInt16BE(value, this.pos);
    else if (bytes === 4) this.pos = this.buf.writeUInt32BE(value, this.pos);
  }

  /** An array or map header: the fix form under 16 entries, else 16 or 32 bits. */
  count(fix: number, c16: number, n: number): void {
    if (n < 16) this.byte(fix | n);
    else if (n < 0x10000) this.head(c16, 2, n);
    else this.head(c16 + 1, 4, n);
  }

  string(s: string): void {
    // Attribute names and most values are short ASCII: written a byte per character, without
    // Buffer.write's argument checks (a noticeable part of each answer before).
    if (s.length < 32) {
      this.room(1 + s.length);
      const at = this.pos;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[at + 1 + i] = c;
      }
      if (i === s.length) {
        this.buf[at] = 0xa0 | s.length;
        this.pos = at + 1 + s.length;
        return;
      }
    }
    const length = Buffer.byteLength(s, 'utf8');
    if (length < 32) this.byte(0xa0 | length);
    else if (length < 0x100) this.head(0xd9, 1, length);
    else if (length < 0x10000) this.head(0xda, 2, length);
    else this.head(0xdb, 4, length);
    this.room(length);
    this.pos += this.buf.write(s, this.pos, length, 'utf8');
  }

  /** Integers in the smallest format that holds them; anything else as a float64. */
  number(n: number): void {
    if (!Number.isSafeInteger(n)) {
      this.room(9);
      this.buf[this.pos++] = 0xcb;
      this.pos = this.buf.writeDoubleBE(n, this.pos);
    } else if (n >= 0) {
      if (n < 0x80) this.byte(n);
      else if (n < 0x100) this.head(0xcc, 1, n);
      else if (n < 0x10000) this.head(0xcd, 2, n);
      else if (n < 0x100000000) this.head(0xce, 4, n);
      else {
        this.room(9);
        this.buf[this.pos++] = 0xcf;
        this.pos = this.buf.writeBigUInt64BE(BigInt(n), this.pos);
      }
    } else if (n >= -32) {
      this.byte(n & 0xff);
    } else {
      this.room(9);
      if (n >= -0x80) {
        this.buf[this.pos++] = 0xd0;
        this.pos = this.buf.writeInt8(n, this.pos);
      } else if (n >= -0x8000) {
        this.buf[this.pos++] = 0xd1;
        this.pos = this.buf.writeInt16BE(n, this.pos);
      } else if (n >= -0x80000000) {
        this.buf[this.pos++] = 0xd2;
        this.pos = this.buf.writeInt32BE(n, this.pos);
      } else {
        this.buf[this.pos++] = 0xd3;
        this.pos = this.buf.writeBigInt64BE(BigInt(n), this.pos);
      }
    }
  }

  value(v: Value, type: CtyType, path: (string | number)[]): void {
    if (v === null) {
      this.byte(NIL);
      return;
    }
    if (v === UNKNOWN) {
      // ext 8, no data, extension type 0: what cty writes for an unknown value.
      this.head(0xc7, 1, 0);
      this.byte(0);
      return;
    }
    if (type === 'dynamic')
      throw new ValueError(`${describe(path)}: writing dynamic values is not supported`);
    if (type === 'string' || type === 'number' || type === 'bool') {
      if (typeof v !== (type === 'bool' ? 'boolean' : type))
        throw new ValueError(`${describe(path)}: expected a ${type}`);
      if (type === 'string') this.string(v as string);
      else if (type === 'number') this.number(v as number);
      else this.byte(v ? TRUE : FALSE);
      return;
    }
    const [kind, inner] = type;
    if (kind === 'list' || kind === 'set' || kind === 'tuple') {
      if (!Array.isArray(v)) throw new ValueError(`${describe(path)}: expected a ${kind}`);
      this.count(0x90, 0xdc, v.length);
      v.forEach((item, i) => {
        path.push(i);
        this.value(
          item,
          kind === 'tuple' ? ((inner as readonly CtyType[])[i] ?? 'dynamic') : (inner as CtyType),
          path,
        );
        path.pop();
      });
      return;
    }
    if (typeof v !== 'object' || Array.isArray(v))
      throw new ValueError(`${describe(path)}: expected a ${kind}`);
    if (kind === 'map') {
      const keys = Object.keys(v);
      this.count(0x80, 0xde, keys.length);
      for (const name of keys) {
        this.string(name);
        path.push(name);
        this.value((v as Record<string, Value>)[name] ?? null, inner as CtyType, path);
        path.pop();
      }
      return;
    }
    // Objects carry every attribute of their type, null when absent.
    const { declared } = layoutOf(inner as Readonly<Record<string, CtyType>>);
    this.count(0x80, 0xde, declared.length);
    for (const { name, type: t, key } of declared) {
      this.room(key.length);
      key.copy(this.buf, this.pos);
      this.pos += key.length;
      path.push(name);
      this.value(Object.hasOwn(v, name) ? ((v as Record<string, Value>)[name] ?? null) : null, t, path);
      path.pop();
    }
  }
}

/**
 * The JSON form (a state as Terraform stores it, which UpgradeResourceState hands over): parsed
 * JSON, typed by the schema the same way as msgpack. A dynamic value is {"value", "type"}.
 */
function fromJson(raw: unknown, type: CtyType, path: (string | number)[]): Value {
  const fail = (what: string): never => {
    throw new ValueError(`${describe(path)}: ${what}`);
  };
  if (raw === null || raw === undefined) return null;
  if (type === 'dynamic') {
    const { value, type: actual } = (raw ?? {}) as { value?: unknown; type?: CtyType };
    if (actual === undefined) return fail('malformed dynamic value');
    return fromJson(value, actual, path);
  }
  if (type === 'string') return typeof raw === 'string' ? raw : fail('expected a string');
  if (type === 'number') {
    if (typeof raw === 'number') return raw;
    // Numbers too precise for a float travel as decimal strings.
    if (typeof raw === 'string' && raw.trim() !== '' && !Number.isNaN(Number(raw))) return Number(raw);
    return fail('expected a number');
  }
  if (type === 'bool') return typeof raw === 'boolean' ? raw : fail('expected a bool');
  const [kind, inner] = type;
  if (kind === 'list' || kind === 'set' || kind === 'tuple') {
    if (!Array.isArray(raw)) return fail(`expected a ${kind}`);
    return raw.map((item, i) => {
      path.push(i);
      const t = kind === 'tuple' ? ((inner as readonly CtyType[])[i] ?? 'dynamic') : (inner as CtyType);
      const v = fromJson(item, t, path);
      path.pop();
      return v;
    });
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) return fail(`expected a ${kind}`);
  const attrs = kind === 'object' ? (inner as Readonly<Record<string, CtyType>>) : undefined;
  const out: Record<string, Value> = {};
  for (const [key, item] of Object.entries(raw)) {
    const t = attrs ? attrs[key] : (inner as CtyType);
    if (t === undefined) continue;
    path.push(key);
    setEntry(out, key, fromJson(item, t, path));
    path.pop();
  }
  if (attrs) for (const name in attrs) if (!(name in out)) out[name] = null;
  return out;
}

export interface DynamicValue {
  msgpack?: Uint8Array | Buffer | null;
  json?: Uint8Array | Buffer | null;
}

/** Reads a DynamicValue (msgpack, or JSON on some older paths) as a value of the given type. */
export function decodeDynamic(dv: DynamicValue | null | undefined, type: CtyType): Value {
  if (!dv) return null;
  if (dv.msgpack && dv.msgpack.length > 0) {
    const buf = Buffer.isBuffer(dv.msgpack)
      ? dv.msgpack
      : Buffer.from(dv.msgpack.buffer, dv.msgpack.byteOffset, dv.msgpack.byteLength);
    const reader = new Reader(buf);
    const value = reader.value(type, []);
    if (reader.pos !== buf.length) reader.fail([], 'trailing bytes after a msgpack value');
    return value;
  }
  if (dv.json && dv.json.length > 0)
    return fromJson(JSON.parse(Buffer.from(dv.json).toString('utf8')), type, []);
  return null;
}

export function encodeDynamic(v: Value, type: CtyType): { msgpack: Buffer } {
  const writer = new Writer();
  writer.value(v, type, []);
  return { msgpack: writer.finish() };
}
