import { inject } from 'vitest';

// Setup file of the `postgres` test project: points the service harness at the run's PostgreSQL
// (see postgres.global-setup.ts); the harness then gives every service a fresh database there.
process.env.RIGBOX_TEST_DATABASE_URL = inject('rigboxTestDatabaseUrl');
