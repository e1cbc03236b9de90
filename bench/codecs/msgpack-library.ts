import { Decoder, Encoder, ExtData } from '@msgpack/msgpack';
import type { CtyType, Unknown, Value } from '../../tfplugin/src/values/values.js';
import type { MsgpackCodec } from './codec.js';

/**
 * @msgpack/msgpack doing the SDK's cty msgpack work: the library decodes to plain JS, then a
 * typing pass makes the value the server works with (what values.ts's reader makes in one
 * pass); on the way out a typing pass checks the value against its type and lays it out as cty
 * expects (every attribute of an object, null when absent; an unknown as extension 0 with no
 * data), and the library encodes it. `unknown` is the SDK's UNKNOWN, passed in so that this
 * module loads nothing of the SDK's codec.
 */
class TypingError extends Error {
  readonly steps: (string | number)[] = [];
}
const fail = (what: string): never => {
  throw new TypingError(what);
};
/** The path of a failure, built only as the error unwinds (nothing on the way down). */
function step(err: unknown, at: string | number): unknown {
  if (err instanceof TypingError) err.steps.unshift(at);
  return err;
}

export function make(unknown: Unknown): MsgpackCodec {
  const decoder = new Decoder();
  const encoder = new Encoder();
  const UNKNOWN_EXT = new ExtData(0, new Uint8Array(0));

  function typed(raw: unknown, type: CtyType): Value {
    if (raw === null) return null;
    // Any extension reads as unknown (cty writes code 0; refined unknowns use 12).
    if (raw instanceof ExtData) return unknown;
    if (type === 'dynamic') {
      if (!Array.isArray(raw) || raw.length !== 2) return fail('malformed dynamic value');
      const [t, v] = raw as [unknown, unknown];
      const json =
        typeof t === 'string' ? t : t instanceof Uint8Array ? Buffer.from(t).toString('utf8') : null;
      if (json === null) return fail('malformed dynamic value');
      return typed(v, JSON.parse(json) as CtyType);
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
      const out: Value[] = new Array(raw.length);
      for (let i = 0; i < raw.length; i++) {
        try {
          out[i] = typed(
            raw[i],
            kind === 'tuple' ? ((inner as readonly CtyType[])[i] ?? 'dynamic') : (inner as CtyType),
          );
        } catch (err) {
          throw step(err, i);
        }
      }
      return out;
    }
    if (typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array)
      return fail(`expected a ${kind}`);
    const entries = raw as Record<string, unknown>;
    const out: Record<string, Value> = {};
    if (kind === 'map') {
      for (const key of Object.keys(entries)) {
        try {
          out[key] = typed(entries[key], inner as CtyType);
        } catch (err) {
          throw step(err, key);
        }
      }
      return out;
    }
    // Objects carry every attribute of their type, null when absent; others are dropped.
    const attrs = inner as Readonly<Record<string, CtyType>>;
    for (const name in attrs) {
      try {
        out[name] = Object.hasOwn(entries, name) ? typed(entries[name], attrs[name] as CtyType) : null;
      } catch (err) {
        throw step(err, name);
      }
    }
    return out;
  }

  function untyped(v: Value, type: CtyType): unknown {
    if (v === null) return null;
    if (v === unknown) return UNKNOWN_EXT;
    if (type === 'dynamic') return fail('writing dynamic values is not supported');
    if (type === 'string' || type === 'number' || type === 'bool') {
      return typeof v === (type === 'bool' ? 'boolean' : type) ? v : fail(`expected a ${type}`);
    }
    const [kind, inner] = type;
    if (kind === 'list' || kind === 'set' || kind === 'tuple') {
      if (!Array.isArray(v)) return fail(`expected a ${kind}`);
      const out: unknown[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) {
        try {
          out[i] = untyped(
            v[i] as Value,
            kind === 'tuple' ? ((inner as readonly CtyType[])[i] ?? 'dynamic') : (inner as CtyType),
          );
        } catch (err) {
          throw step(err, i);
        }
      }
      return out;
    }
    if (typeof v !== 'object' || Array.isArray(v)) return fail(`expected a ${kind}`);
    const entries = v as Record<string, Value>;
    const out: Record<string, unknown> = {};
    if (kind === 'map') {
      for (const key of Object.keys(entries)) {
        try {
          out[key] = untyped(entries[key] ?? null, inner as CtyType);
        } catch (err) {
          throw step(err, key);
        }
      }
      return out;
    }
    const attrs = inner as Readonly<Record<string, CtyType>>;
    for (const name in attrs) {
      try {
        out[name] = Object.hasOwn(entries, name)
          ? untyped(entries[name] ?? null, attrs[name] as CtyType)
          : null;
      } catch (err) {
        throw step(err, name);
      }
    }
    return out;
  }

  const withPath = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof TypingError)
        err.message = `${err.steps.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('')}: ${err.message}`;
      throw err;
    }
  };
  return {
    decode: (msgpack, type) => withPath(() => typed(decoder.decode(msgpack), type)),
    encode: (value, type) => withPath(() => encoder.encode(untyped(value, type))),
  };
}
