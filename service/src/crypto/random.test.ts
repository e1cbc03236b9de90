import { expect, it } from 'vitest';
import { randomBytesPooled } from './random.js';

it('hands out fresh bytes of the size asked for, never the same twice, across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const size = [5, 12, 32][i % 3] as number;
    const b = randomBytesPooled(size);
    expect(b.length).toBe(size);
    seen.add(b.toString('hex'));
  }
  expect(seen.size).toBe(2000);
  expect(randomBytesPooled(4096).length).toBe(4096);
});

it('returns copies: zeroing one (as the envelope code does with a data key) leaves the next intact', () => {
  const a = randomBytesPooled(32);
  const copy = Buffer.from(a);
  const b = randomBytesPooled(32);
  a.fill(0);
  expect(b.equals(Buffer.alloc(32))).toBe(false);
  expect(copy.equals(Buffer.alloc(32))).toBe(false);
});
