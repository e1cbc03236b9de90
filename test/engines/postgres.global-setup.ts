import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The PostgreSQL server of this run; each service harness creates its own database on it. */
    rigboxTestDatabaseUrl: string;
  }
}

/**
 * Global setup of the `postgres` test project: one throwaway PostgreSQL for the whole run, or the
 * server named by RIGBOX_TEST_DATABASE_URL when the caller brings one (a CI service container).
 * A failure to start is a failed run, never a skip.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.RIGBOX_TEST_DATABASE_URL?.trim();
  if (given) {
    project.provide('rigboxTestDatabaseUrl', given);
    return undefined;
  }
  const postgres = await startPostgres();
  project.provide('rigboxTestDatabaseUrl', postgres.url);
  return () => postgres.stop();
}
