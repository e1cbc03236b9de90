import { Decoder, Encoder, ExtData } from '@msgpack/msgpack';

// One of each for the process: the library's decode()/encode() functions build a new codec (and
// its key cache) on every call, and every value tofu sends or receives passes through here.
const decoder = new Decoder({ useBigInt64: false });
const encoder = new Encoder({ ignoreUndefined: false });

/**
 * Terraform's values (cty) on the wire: msgpack, guided by the schema's types. Null is nil; an
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

function fromWire(raw: unknown, type: CtyType, path: string): Value {
  if (raw === null || raw === undefined) return null;
  if (raw instanceof ExtData) return UNKNOWN;
  if (type === 'dynamic') {
    // [type as JSON bytes, value]
    if (!Array.isArray(raw) || raw.length !== 2) throw new ValueError(`${path}: malformed dynamic value`);
    const t = JSON.parse(Buffer.from(raw[0] as Uint8Array).toString('utf8')) as CtyType;
    return fromWire(raw[1], t, path);
  }
  if (type === 'string') {
    if (typeof raw !== 'string') throw new ValueError(`${path}: expected a string`);
    return raw;
  }
  if (type === 'number') {
    if (typeof raw === 'number') return raw;
    if (typeof raw === 'bigint') return Number(raw);
    // Numbers too precise for a float travel as decimal strings.
    if (typeof raw === 'string' && raw.trim() !== '' && !Number.isNaN(Number(raw))) return Number(raw);
    throw new ValueError(`${path}: expected a number`);
  }
  if (type === 'bool') {
    if (typeof raw !== 'boolean') throw new ValueError(`${path}: expected a bool`);
    return raw;
  }
  const [kind, inner] = type;
  if (kind === 'list' || kind === 'set') {
    if (!Array.isArray(raw)) throw new ValueError(`${path}: expected a ${kind}`);
    return raw.map((item, i) => fromWire(item, inner as CtyType, `${path}[${i}]`));
  }
  if (kind === 'tuple') {
    if (!Array.isArray(raw)) throw new ValueError(`${path}: expected a tuple`);
    return raw.map((item, i) =>
      fromWire(item, (inner as readonly CtyType[])[i] ?? 'dynamic', `${path}[${i}]`),
    );
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ValueError(`${path}: expected a ${kind}`);
  const entries = raw instanceof Map ? [...raw.entries()] : Object.entries(raw as object);
  const out: Record<string, Value> = {};
  if (kind === 'map') {
    for (const [k, v] of entries) out[String(k)] = fromWire(v, inner as CtyType, `${path}.${String(k)}`);
    return out;
  }
  const attrs = inner as Readonly<Record<string, CtyType>>;
  for (const [k, v] of entries) {
    const t = attrs[String(k)];
    if (t !== undefined) out[String(k)] = fromWire(v, t, `${path}.${String(k)}`);
  }
  for (const name of Object.keys(attrs)) if (!(name in out)) out[name] = null;
  return out;
}

function toWire(v: Value, type: CtyType, path: string): unknown {
  if (v === null) return null;
  if (v === UNKNOWN) return new ExtData(0, new Uint8Array(0));
  if (type === 'dynamic') throw new ValueError(`${path}: writing dynamic values is not supported`);
  if (type === 'string' || type === 'number' || type === 'bool') {
    const expected = type === 'bool' ? 'boolean' : type;
    if (typeof v !== expected) throw new ValueError(`${path}: expected a ${type}`);
    return v;
  }
  const [kind, inner] = type;
  if (kind === 'list' || kind === 'set') {
    if (!Array.isArray(v)) throw new ValueError(`${path}: expected a ${kind}`);
    return v.map((item, i) => toWire(item, inner as CtyType, `${path}[${i}]`));
  }
  if (kind === 'tuple') {
    if (!Array.isArray(v)) throw new ValueError(`${path}: expected a tuple`);
    return v.map((item, i) => toWire(item, (inner as readonly CtyType[])[i] ?? 'dynamic', `${path}[${i}]`));
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw new ValueError(`${path}: expected a ${kind}`);
  const out: Record<string, unknown> = {};
  if (kind === 'map') {
    for (const [k, item] of Object.entries(v)) out[k] = toWire(item, inner as CtyType, `${path}.${k}`);
    return out;
  }
  // Objects carry every attribute of their type, null when absent.
  for (const [name, t] of Object.entries(inner as Readonly<Record<string, CtyType>>)) {
    out[name] = toWire(v[name] ?? null, t, `${path}.${name}`);
  }
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
    return fromWire(decoder.decode(dv.msgpack), type, '');
  }
  if (dv.json && dv.json.length > 0)
    return fromWire(JSON.parse(Buffer.from(dv.json).toString('utf8')), type, '');
  return null;
}

export function encodeDynamic(v: Value, type: CtyType): { msgpack: Buffer } {
  const bytes = encoder.encode(toWire(v, type, ''));
  return { msgpack: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}
