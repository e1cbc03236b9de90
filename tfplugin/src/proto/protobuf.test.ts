import { describe, expect, it } from 'vitest';
import { Diagnostic, DynamicValue, PROVIDER_METHODS, Schema } from './messages.js';
import { decode, encode } from './protobuf.js';

// Fixtures written from the protobuf wire format: tag = field << 3 | wire type; varints; length-
// delimited bytes, strings and messages; zero values omitted (proto3).
describe('protobuf codec', () => {
  it('encodes a diagnostic with an attribute path (nested and repeated messages, enum, oneof)', () => {
    const bytes = encode(Diagnostic, {
      severity: 1,
      summary: 'Bad',
      detail: '',
      attribute: { steps: [{ attributeName: 'mode' }, { elementKeyInt: 2 }] },
    });
    expect(bytes.toString('hex')).toBe(
      [
        '0801', // severity = 1
        '1203426164', // summary = "Bad"
        '220c', // attribute, 12 bytes
        '0a06',
        '0a046d6f6465', // steps[0]: attribute_name = "mode"
        '0a02',
        '1802', // steps[1]: element_key_int = 2
      ].join(''),
    );
    expect(decode(Diagnostic, bytes)).toEqual({
      severity: 1,
      summary: 'Bad',
      detail: '',
      attribute: {
        steps: [
          { attributeName: 'mode', elementKeyString: '', elementKeyInt: 0 },
          { attributeName: '', elementKeyString: '', elementKeyInt: 2 },
        ],
      },
    });
  });

  it('encodes map fields as repeated key/value entries', () => {
    const method = PROVIDER_METHODS.get('GetProviderSchema')!;
    const bytes = encode(method.response, { resourceSchemas: { r: { version: 1 } } });
    // field 2, 7 bytes: key (1) "r", value (2) a Schema with version 1
    expect(bytes.toString('hex')).toBe(['1207', '0a0172', '1202', '0801'].join(''));
    expect(decode(method.response, bytes).resourceSchemas).toEqual({ r: { version: 1, block: null } });
  });

  it('decodes requests with defaults for absent fields and skips unknown fields', () => {
    const method = PROVIDER_METHODS.get('ValidateResourceConfig')!;
    // type_name = "t"; config = { msgpack: 0xc0 }; an unknown field 9 (varint 1); client_capabilities absent
    const bytes = Buffer.from(['0a0174', '1203', '0a01c0', '4801'].join(''), 'hex');
    expect(decode(method.request, bytes)).toEqual({
      typeName: 't',
      config: { msgpack: Buffer.from([0xc0]), json: Buffer.alloc(0) },
      clientCapabilities: null,
    });
  });

  it('round-trips large and negative int64 values and byte payloads', () => {
    const bytes = encode(Schema, { version: 2 ** 40 });
    expect(decode(Schema, bytes).version).toBe(2 ** 40);
    const neg = encode(PROVIDER_METHODS.get('UpgradeResourceState')!.request, { version: -1 });
    expect(neg.toString('hex')).toBe('10ffffffffffffffffff01');
    expect(decode(PROVIDER_METHODS.get('UpgradeResourceState')!.request, neg).version).toBe(-1);
    const dv = encode(DynamicValue, { msgpack: Buffer.alloc(300, 7) });
    expect(dv.subarray(0, 3).toString('hex')).toBe('0aac02');
    expect((decode(DynamicValue, dv).msgpack as Buffer).length).toBe(300);
    // Lengths of three varint bytes, and a version at the edge of the small-number path.
    const big = encode(DynamicValue, { msgpack: Buffer.alloc(70_000, 1) });
    expect(big.subarray(0, 4).toString('hex')).toBe('0af0a204');
    expect((decode(DynamicValue, big).msgpack as Buffer).equals(Buffer.alloc(70_000, 1))).toBe(true);
    for (const version of [127, 128, 0x7fffffff, 0x80000000]) {
      expect(decode(Schema, encode(Schema, { version })).version).toBe(version);
    }
  });

  it('writes nested messages whose length takes one, two and three varint bytes', () => {
    // A diagnostic nested in a response: the diagnostic's length decides how far its bytes move up.
    const method = PROVIDER_METHODS.get('ValidateResourceConfig')!;
    for (const size of [0, 100, 127, 128, 300, 16_383, 16_384, 70_000]) {
      const summary = 'é'.repeat(size >> 1) + 'x'.repeat(size & 1); // two bytes per é in UTF-8
      const bytes = encode(method.response, {
        diagnostics: [
          { severity: 1, summary },
          { severity: 2, summary: 'after' },
        ],
      });
      const inner = encode(Diagnostic, { severity: 1, summary });
      const varint = (n: number) => {
        const out: number[] = [];
        for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
        return [...out, n];
      };
      const second = encode(Diagnostic, { severity: 2, summary: 'after' });
      const expected = Buffer.concat([
        Buffer.from([0x0a, ...varint(inner.length)]),
        inner,
        Buffer.from([0x0a, ...varint(second.length)]),
        second,
      ]);
      expect(bytes.equals(expected)).toBe(true);
      const back = decode(method.response, bytes).diagnostics as { severity: number; summary: string }[];
      expect(back.map((d) => [d.severity, d.summary])).toEqual([
        [1, summary],
        [2, 'after'],
      ]);
    }
  });

  it('reads enum and bool varints of any width without BigInt, as protobuf does (low 32 bits)', () => {
    // severity (enum) = -1, sign-extended to ten bytes as Go writes negative enums
    expect(decode(Diagnostic, Buffer.from('08ffffffffffffffffff01', 'hex')).severity).toBe(-1);
    // an unknown varint field of ten bytes is skipped
    expect(decode(Diagnostic, Buffer.from('78ffffffffffffffffff010801', 'hex')).severity).toBe(1);
    expect(() => decode(Diagnostic, Buffer.from('08ffffffffffffffffffff01', 'hex'))).toThrow(/too long/);
  });

  it('refuses truncated input', () => {
    expect(() => decode(Diagnostic, Buffer.from('1205ab', 'hex'))).toThrow(/truncated/);
  });
});
