import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // CI must fail on a missing snapshot, never write one.
    update: false,
    // The service's tests run twice, once per storage backend (one suite, both backends).
    projects: [
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: [
            'catalog/src/**/*.test.ts',
            'tfplugin/src/**/*.test.ts',
            'service/src/**/*.test.ts',
            'provider/src/**/*.test.ts',
            'test/**/*.test.ts',
          ],
          // Whatever the shell says, this project is the embedded default.
          env: { RIGBOX_TEST_DATABASE_URL: '' },
        },
      },
      {
        extends: true,
        test: {
          name: 'postgres',
          // gateway.credits starts a service through the harness, so it runs on both backends too.
          include: ['service/src/**/*.test.ts', 'test/gateway.credits.test.ts'],
          globalSetup: ['test/engines/postgres.global-setup.ts'],
          setupFiles: ['test/engines/postgres.setup.ts'],
        },
      },
    ],
  },
});
