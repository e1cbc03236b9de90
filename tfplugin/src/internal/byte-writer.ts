/**
 * A buffer written front to back that grows as it needs to: what the protobuf and cty msgpack
 * writers share. Only the bytes in [0, pos) are ever handed out; the rest of the (unzeroed)
 * allocation is not, so nothing left in it from elsewhere in the process can leak into a message.
 */
export class ByteWriter {
  protected buf: Buffer;
  pos: number;

  /** `offset` bytes are left at the front for the caller to fill in (a frame header). */
  constructor(offset = 0) {
    this.buf = Buffer.allocUnsafe(Math.max(256, offset));
    this.pos = offset;
  }

  /** Makes room for `n` more bytes, doubling the buffer when it is full. */
  protected room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
