import { ExtData, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  type CtyType,
  containsUnknown,
  decodeDynamic,
  encodeDynamic,
  UNKNOWN,
  type Value,
} from './values.js';

// Fixtures derived from the published wire format (msgpack of cty values), byte by byte.
describe('cty msgpack values', () => {
  const type: CtyType = ['object', { name: 'string', count: 'number', on: 'bool', tags: ['map', 'string'] }];

  it('encodes an object with every attribute, nulls included, in msgpack', () => {
    const { msgpack } = encodeDynamic({ name: 'a', count: 2 }, type);
    // fixmap(4) "name" "a" "count" 2 "on" nil "tags" nil
    expect(msgpack.toString('hex')).toBe(
      ['84', 'a46e616d65', 'a161', 'a5636f756e74', '02', 'a26f6e', 'c0', 'a474616773', 'c0'].join(''),
    );
  });

  it('writes unknown as extension 0 and reads any extension as unknown', () => {
    const { msgpack } = encodeDynamic(UNKNOWN, 'string');
    expect(msgpack.toString('hex')).toBe('c70000'); // ext 8, length 0, type 0
    // A refined unknown (extension 12) with a payload is still just unknown to us.
    const refined = encode(new ExtData(12, new Uint8Array([0x81, 0x01, 0xc2])));
    expect(decodeDynamic({ msgpack: refined }, 'string')).toBe(UNKNOWN);
    expect(decodeDynamic({ msgpack: Buffer.from('d40000', 'hex') }, 'number')).toBe(UNKNOWN);
  });

  it('reads numbers as ints, floats or decimal strings', () => {
    expect(decodeDynamic({ msgpack: Buffer.from('07', 'hex') }, 'number')).toBe(7);
    expect(decodeDynamic({ msgpack: Buffer.from('cb3ff8000000000000', 'hex') }, 'number')).toBe(1.5);
    expect(decodeDynamic({ msgpack: encode('12.25') }, 'number')).toBe(12.25);
  });

  it('round-trips nested blocks and unknowns, and finds unknowns deep inside', () => {
    const nested: CtyType = [
      'object',
      { src: ['object', { vault: ['object', { path: 'string', version: 'number' }] }] },
    ];
    const v: Value = { src: { vault: { path: 'p', version: UNKNOWN } } };
    const back = decodeDynamic(encodeDynamic(v, nested), nested);
    expect(back).toEqual(v);
    expect(containsUnknown(back)).toBe(true);
    expect(containsUnknown({ a: [1, { b: null }] })).toBe(false);
  });

  it('reads the JSON form and dynamic values', () => {
    expect(decodeDynamic({ json: Buffer.from('{"name":"x","count":1}') }, type)).toEqual({
      name: 'x',
      count: 1,
      on: null,
      tags: null,
    });
    const dyn = encode([Buffer.from('"string"'), 'hello']);
    expect(decodeDynamic({ msgpack: dyn }, 'dynamic')).toBe('hello');
  });

  it('refuses a value of the wrong type', () => {
    expect(() => decodeDynamic({ msgpack: encode(3) }, 'string')).toThrow(/expected a string/);
    expect(() => encodeDynamic({ name: 5 } as never, type)).toThrow(/name: expected a string/);
  });
});
