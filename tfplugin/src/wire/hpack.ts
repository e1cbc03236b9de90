import { HUFFMAN_CODE_LENGTHS, STATIC_TABLE } from './hpack-tables.js';

/**
 * HPACK (RFC 7541), the part an HTTP/2 server for gRPC needs: a full decoder (the client's
 * encoder indexes fields and Huffman-codes strings, so both must be understood, and every header
 * block must pass through the decoder in order to keep its table in step), and an encoder that
 * only writes literals without indexing (our answers are a handful of short fields).
 */
export class HpackError extends Error {}

export type HeaderField = readonly [name: string, value: string];

/**
 * The canonical Huffman code in the form a decoder reads it: for each code length, the first
 * code of that length and where its symbols start in `symbols` (sorted by length, then symbol).
 * Built from 257 lengths, once per process.
 */
interface CanonicalCode {
  firstCode: Int32Array;
  firstIndex: Int32Array;
  count: Int32Array;
  symbols: Int16Array;
}
let canonical: CanonicalCode | undefined;
const MAX_CODE_LENGTH = 30;

function canonicalCode(): CanonicalCode {
  if (canonical) return canonical;
  const count = new Int32Array(MAX_CODE_LENGTH + 1);
  for (const length of HUFFMAN_CODE_LENGTHS) count[length] = (count[length] as number) + 1;
  const firstCode = new Int32Array(MAX_CODE_LENGTH + 1);
  const firstIndex = new Int32Array(MAX_CODE_LENGTH + 1);
  let code = 0;
  let index = 0;
  for (let length = 1; length <= MAX_CODE_LENGTH; length++) {
    code = (code + (count[length - 1] as number)) << 1;
    firstCode[length] = code;
    firstIndex[length] = index;
    index += count[length] as number;
  }
  const symbols = new Int16Array(HUFFMAN_CODE_LENGTHS.length);
  const next = firstIndex.slice();
  HUFFMAN_CODE_LENGTHS.forEach((length, symbol) => {
    const at = next[length] as number;
    symbols[at] = symbol;
    next[length] = at + 1;
  });
  canonical = { firstCode, firstIndex, count, symbols };
  return canonical;
}

/** Symbol `symbol`'s code, for tests against the RFC's table. */
export function huffmanCodeOf(symbol: number): { bits: number; code: number } {
  const { firstCode, firstIndex, symbols } = canonicalCode();
  const bits = HUFFMAN_CODE_LENGTHS[symbol] as number;
  return { bits, code: (firstCode[bits] as number) + symbols.indexOf(symbol) - (firstIndex[bits] as number) };
}

/** Decodes a Huffman-coded string; the padding must be the start of EOS (all ones), under 8 bits. */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  const { firstCode, firstIndex, count, symbols } = canonicalCode();
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let length = 0;
  let code = 0;
  let bits = 0;
  let ones = true;
  for (let i = start; i < end; i++) {
    const byte = buf[i] as number;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      code = (code << 1) | bit;
      bits++;
      if (bit === 0) ones = false;
      // Codes of one length are consecutive: this one is a symbol if it falls in its length's run.
      const offset = code - (firstCode[bits] as number);
      if (offset >= 0 && offset < (count[bits] as number)) {
        const sym = symbols[(firstIndex[bits] as number) + offset] as number;
        if (sym === 256) throw new HpackError('end-of-string symbol inside a Huffman string');
        out[length++] = sym;
        code = 0;
        bits = 0;
        ones = true;
      } else if (bits === MAX_CODE_LENGTH) {
        throw new HpackError('invalid Huffman code');
      }
    }
  }
  if (bits > 7 || !ones) throw new HpackError('invalid Huffman padding');
  return out.toString('latin1', 0, length);
}

/** An entry's size in the dynamic table: its octets plus 32 (RFC 7541 section 4.1). */
const entrySize = (name: string, value: string) => name.length + value.length + 32;

export class HpackDecoder {
  /** Newest first, as HPACK indexes them. */
  private readonly table: HeaderField[] = [];
  private size = 0;
  private maxSize: number;
  private pos = 0;
  private buf: Uint8Array = new Uint8Array(0);

  /** `limit`: the SETTINGS_HEADER_TABLE_SIZE we advertised (4,096 unless we said otherwise). */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  decode(block: Uint8Array): HeaderField[] {
    this.buf = block;
    this.pos = 0;
    const fields: HeaderField[] = [];
    let fieldSeen = false;
    while (this.pos < block.length) {
      const first = block[this.pos] as number;
      if (first & 0x80) {
        fields.push(this.entry(this.integer(7)));
      } else if (first & 0x40) {
        const field = this.literal(6);
        this.insert(field);
        fields.push(field);
      } else if (first & 0x20) {
        // Table size updates may only open a block (section 4.2).
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const size = this.integer(5);
        if (size > this.limit) throw new HpackError('dynamic table size update above the limit');
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        // Without indexing (0000) or never indexed (0001): not added to the table.
        fields.push(this.literal(4));
      }
      fieldSeen = true;
    }
    return fields;
  }

  private entry(index: number): HeaderField {
    if (index === 0) throw new HpackError('header index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as HeaderField;
    const field = this.table[index - STATIC_TABLE.length - 1];
    if (!field) throw new HpackError(`header index ${index} is not in the table`);
    return field;
  }

  private literal(prefix: number): HeaderField {
    const index = this.integer(prefix);
    const name = index === 0 ? this.string() : this.entry(index)[0];
    return [name, this.string()];
  }

  private insert(field: HeaderField) {
    const size = entrySize(field[0], field[1]);
    this.evict(size);
    // An entry larger than the whole table empties it and is not added (section 4.4).
    if (size > this.maxSize) return;
    this.table.unshift(field);
    this.size += size;
  }

  private evict(room: number) {
    while (this.table.length > 0 && this.size + room > this.maxSize) {
      const [name, value] = this.table.pop() as HeaderField;
      this.size -= entrySize(name, value);
    }
  }

  /** An integer with an N-bit prefix (section 5.1). */
  private integer(prefix: number): number {
    const max = (1 << prefix) - 1;
    if (this.pos >= this.buf.length) throw new HpackError('truncated header block');
    let value = (this.buf[this.pos++] as number) & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new HpackError('truncated integer');
      const byte = this.buf[this.pos++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) break;
      if (shift > 28) throw new HpackError('integer too large');
    }
    return value;
  }

  private string(): string {
    if (this.pos >= this.buf.length) throw new HpackError('truncated header block');
    const huffman = ((this.buf[this.pos] as number) & 0x80) !== 0;
    const length = this.integer(7);
    const start = this.pos;
    const end = start + length;
    if (end > this.buf.length) throw new HpackError('truncated string');
    this.pos = end;
    return huffman
      ? huffmanDecode(this.buf, start, end)
      : Buffer.from(this.buf.buffer, this.buf.byteOffset + start, length).toString('latin1');
  }
}

function writeInteger(out: number[], value: number, prefix: number, flags: number) {
  const max = (1 << prefix) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/**
 * Encodes fields as literals without indexing (our table stays empty, so the client's decoder
 * needs no state from us), a field the static table holds whole as its index, and no Huffman.
 */
export function encodeHeaders(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const whole = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (whole >= 0) {
      writeInteger(out, whole + 1, 7, 0x80);
      continue;
    }
    const named = STATIC_TABLE.findIndex(([n]) => n === name);
    if (named >= 0) {
      writeInteger(out, named + 1, 4, 0);
    } else {
      out.push(0);
      const n = Buffer.from(name, 'latin1');
      writeInteger(out, n.length, 7, 0);
      out.push(...n);
    }
    const v = Buffer.from(value, 'latin1');
    writeInteger(out, v.length, 7, 0);
    out.push(...v);
  }
  return Buffer.from(out);
}
