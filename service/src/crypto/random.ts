import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let used = POOL_BYTES;

/**
 * `size` bytes from the CSPRNG, served from a pool filled 4 KiB at a time: a PUT with a key needs
 * four small random values (data key, two IVs, an id), and each randomBytes() call cost more than
 * the AES-GCM around it. Bytes are handed out once and zeroed in the pool as they leave, so no
 * data key lingers there.
 */
export function randomBytesPooled(size: number): Buffer {
  if (size > POOL_BYTES / 8) {
    const own = Buffer.alloc(size);
    return randomFillSync(own);
  }
  if (used + size > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const out = Buffer.from(pool.subarray(used, used + size));
  pool.fill(0, used, used + size);
  used += size;
  return out;
}
