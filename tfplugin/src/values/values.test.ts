import { describe, expect, it } from 'vitest';
import {
  type CtyType,
  containsUnknown,
  decodeDynamic,
  encodeDynamic,
  UNKNOWN,
  type Value,
} from './values.js';

// Fixtures derived from the published wire formats (msgpack, and cty's use of it), byte by byte.
const mp = (hex: string) => ({ msgpack: Buffer.from(hex.replace(/\s+/g, ''), 'hex') });
const hexOf = (v: Value, t: CtyType) => encodeDynamic(v, t).msgpack.toString('hex');
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
    // ext 8, 3 bytes of type 12: {1: false}
    expect(decodeDynamic(mp('c7 03 0c 81 01 c2'), 'string')).toBe(UNKNOWN);
    expect(decodeDynamic({ msgpack: Buffer.from('d40000', 'hex') }, 'number')).toBe(UNKNOWN);
  });

  it('reads numbers as ints, floats or decimal strings', () => {
    expect(decodeDynamic({ msgpack: Buffer.from('07', 'hex') }, 'number')).toBe(7);
    expect(decodeDynamic({ msgpack: Buffer.from('cb3ff8000000000000', 'hex') }, 'number')).toBe(1.5);
    expect(decodeDynamic(mp('a5 31322e3235'), 'number')).toBe(12.25); // "12.25"
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
    // [bin8 '"string"', "hello"]: cty writes the type as JSON bytes
    expect(decodeDynamic(mp('92 c4 08 22737472696e6722 a5 68656c6c6f'), 'dynamic')).toBe('hello');
    expect(decodeDynamic({ json: Buffer.from('{"value":"x","type":"string"}') }, 'dynamic')).toBe('x');
  });

  it('refuses a value of the wrong type', () => {
    expect(() => decodeDynamic(mp('03'), 'string')).toThrow(/expected a string/);
    const people: CtyType = ['list', ['object', { name: 'string' }]];
    // [{name: "a"}, {name: 7}]
    expect(() => decodeDynamic(mp('92 81 a46e616d65 a161 81 a46e616d65 07'), people)).toThrow(
      /^\[1\]\.name: expected a string$/,
    );
    expect(() => decodeDynamic(mp('a5 6162'), 'string')).toThrow(/truncated/);
    expect(() => decodeDynamic(mp('a1 61 c0'), 'string')).toThrow(/trailing bytes/);
    expect(() => encodeDynamic([{ name: 'a' }, { name: 7 }] as never, people)).toThrow(
      /^\[1\]\.name: expected a string$/,
    );
    expect(() => encodeDynamic({ name: 5 } as never, type)).toThrow(/name: expected a string/);
  });

  it('writes numbers in the smallest msgpack format and reads every integer and float format', () => {
    const cases: [number, string][] = [
      [0, '00'],
      [127, '7f'],
      [128, 'cc80'],
      [256, 'cd0100'],
      [70_000, 'ce00011170'],
      [2 ** 40, 'cf0000010000000000'],
      [-1, 'ff'],
      [-32, 'e0'],
      [-33, 'd0df'],
      [-200, 'd1ff38'],
      [-70_000, 'd2fffeee90'],
      [-(2 ** 40), 'd3ffffff0000000000'],
      [1.5, 'cb3ff8000000000000'],
    ];
    for (const [n, hex] of cases) {
      expect(hexOf(n, 'number')).toBe(hex);
      expect(decodeDynamic(mp(hex), 'number')).toBe(n);
    }
    expect(decodeDynamic(mp('ca3fc00000'), 'number')).toBe(1.5); // float32
    expect(decodeDynamic(mp('d080'), 'number')).toBe(-128);
  });

  it('writes strings, lists and maps with the length formats their sizes need', () => {
    const s31 = 'x'.repeat(31);
    expect(hexOf(s31, 'string')).toBe(`bf${'78'.repeat(31)}`);
    expect(hexOf('x'.repeat(32), 'string')).toBe(`d920${'78'.repeat(32)}`);
    expect(hexOf('x'.repeat(300), 'string').slice(0, 6)).toBe('da012c');
    expect(hexOf('é', 'string')).toBe('a2c3a9'); // the length counts UTF-8 bytes
    expect(hexOf('abé', 'string')).toBe('a46162c3a9');
    expect(decodeDynamic(mp('a46162c3a9'), 'string')).toBe('abé');
    const list = Array.from({ length: 20 }, (_, i) => `v${i}`);
    expect(hexOf(list, ['list', 'string']).slice(0, 6)).toBe('dc0014');
    const map = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i]));
    expect(hexOf(map, ['map', 'number']).slice(0, 6)).toBe('de0010');
    const big = 'é'.repeat(40_000);
    for (const [v, t] of [
      [s31, 'string'],
      [big, 'string'],
      [list, ['list', 'string']],
      [map, ['map', 'number']],
      [
        [1, 'a', true],
        ['tuple', ['number', 'string', 'bool']],
      ],
    ] as [Value, CtyType][]) {
      expect(decodeDynamic(encodeDynamic(v, t), t)).toEqual(v);
    }
  });

  it('skips attributes the schema does not know, whatever their shape', () => {
    // {"x": {"a": [1, "b", ext], "c": 1.5}, "name": "n"}
    const bytes = mp('82 a178 82 a161 93 01 a162 d40000 a163 cb3ff8000000000000 a46e616d65 a16e');
    expect(decodeDynamic(bytes, type)).toEqual({ name: 'n', count: null, on: null, tags: null });
  });

  it('reads object keys in cty order, in any other order, and with some missing', () => {
    // cty writes attributes sorted: {"count": 2, "name": "a", "on": true, "tags": {}}
    const sorted = mp('84 a5636f756e74 02 a46e616d65 a161 a26f6e c3 a474616773 80');
    const full = { count: 2, name: 'a', on: true, tags: {} };
    expect(decodeDynamic(sorted, type)).toEqual(full);
    // The same attributes in reverse.
    const reversed = mp('84 a474616773 80 a26f6e c3 a46e616d65 a161 a5636f756e74 02');
    expect(decodeDynamic(reversed, type)).toEqual(full);
    // Only "on" (the third in order), then "name" after it: both paths, the rest null.
    const partial = mp('82 a26f6e c2 a46e616d65 a162');
    expect(decodeDynamic(partial, type)).toEqual({ count: null, name: 'b', on: false, tags: null });
    // A key that is a prefix of an attribute ("nam") or an Object.prototype member is not one.
    const strangers = mp('82 a36e616d a178 a8746f537472696e67 a179');
    expect(decodeDynamic(strangers, type)).toEqual({ count: null, name: null, on: null, tags: null });
  });

  it('keeps "__proto__" a map key, and refuses counts larger than the bytes and endless nesting', () => {
    const tags: CtyType = ['map', 'string'];
    // {"__proto__": "x"}
    const v = decodeDynamic(mp('81 a95f5f70726f746f5f5f a178'), tags) as Record<string, Value>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.entries(v)).toEqual([['__proto__', 'x']]);
    expect(decodeDynamic(encodeDynamic(v, tags), tags)).toEqual(v);
    expect(decodeDynamic({ json: Buffer.from('{"__proto__":"y"}') }, tags)).toHaveProperty(
      ['__proto__'],
      'y',
    );
    // an array of 2^32-1 strings in five bytes
    expect(() => decodeDynamic(mp('dd ffffffff'), ['list', 'string'])).toThrow(/truncated/);
    // an unknown attribute nested 1,000 arrays deep
    const deep = mp(`81 a178 ${'91'.repeat(1000)} c0`);
    expect(() => decodeDynamic(deep, type)).toThrow(/nested too deeply/);
  });
});
