import { join } from 'node:path';
import { SqliteStorage } from './sqlite.js';
import type { Storage } from './types.js';

export interface StorageConfig {
  dataDir: string;
  /** postgres://... selects PostgreSQL; otherwise the embedded SQLite file in the data folder. */
  databaseUrl?: string | undefined;
}

export async function openStorage(config: StorageConfig): Promise<Storage> {
  const url = config.databaseUrl?.trim();
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new Error(
        'RIGBOX_DATABASE_URL must start with postgres:// (or leave it unset for the embedded SQLite)',
      );
    }
    // Loaded only here, so an embedded (SQLite) deployment never loads the PostgreSQL driver.
    const { PostgresStorage } = await import('./postgres.js');
    return PostgresStorage.connect(url);
  }
  return new SqliteStorage(join(config.dataDir, 'rigbox.db'));
}
