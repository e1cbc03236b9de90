import { HUFFMAN_CODES, STATIC_TABLE } from './hpack-tables.js';

/**
 * HPACK (RFC 7541), the part an HTTP/2 server for gRPC needs: a full decoder (the client's
 * encoder indexes fields and Huffman-codes strings, so both must be understood, and every header
 * block must pass through the decoder in order to keep its table in step), and an encoder that
 * only writes literals without indexing (our answers are a handful of short fields).
 */
export class HpackError extends Error {}

export type HeaderField = readonly [name: string, value: string];

/** The Huffman code as a binary trie: children of node n at 2n and 2n+1, symbols at leaves. */
interface Trie {
  next: Int32Array;
  symbol: Int16Array;
}
let trie: Trie | undefined;

function huffmanTrie(): Trie {
  if (trie) return trie;
  // 257 leaves make a full binary tree of 513 nodes.
  const next = new Int32Array(2 * 513).fill(-1);
  const symbol = new Int16Array(513).fill(-1);
  let nodes = 1;
  HUFFMAN_CODES.forEach((entry, sym) => {
    const [bits, hex] = entry.split(':') as [string, string];
    const code = Number.parseInt(hex, 16);
    let node = 0;
    for (let i = Number(bits) - 1; i >= 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (next[slot] === -1) next[slot] = nodes++;
      node = next[slot] as number;
    }
    symbol[node] = sym;
  });
  trie = { next, symbol };
  return trie;
}

/** Decodes a Huffman-coded string; the padding must be the start of EOS (all ones), under 8 bits. */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  const { next, symbol } = huffmanTrie();
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let length = 0;
  let node = 0;
  let depth = 0;
  let ones = true;
  for (let i = start; i < end; i++) {
    const byte = buf[i] as number;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      node = next[2 * node + bit] as number;
      if (node === -1) throw new HpackError('invalid Huffman code');
      depth++;
      if (bit === 0) ones = false;
      const sym = symbol[node] as number;
      if (sym >= 0) {
        if (sym === 256) throw new HpackError('end-of-string symbol inside a Huffman string');
        out[length++] = sym;
        node = 0;
        depth = 0;
        ones = true;
      }
    }
  }
  if (depth > 7 || !ones) throw new HpackError('invalid Huffman padding');
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
