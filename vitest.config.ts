import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['service/src/**/*.test.ts', 'provider/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // CI must fail on a missing snapshot, never write one.
    update: false,
  },
});
