import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client, escapeIdentifier } from 'pg';

/** A workspace's AI-config row exactly as stored, plus the revisions its audit trail records. */
export interface RawConfig {
  mode: string;
  provider: string;
  model: string | null;
  key_ciphertext: string | null;
  key_wrapped_dek: string | null;
  key_kek_id: string | null;
  key_fingerprint: string | null;
  revision: number;
  /** `revision` of every audit event of the workspace, ascending. */
  auditRevisions: number[];
}

/**
 * Direct, read-only access to a service's database (the SQLite file in its data folder, or a
 * PostgreSQL database), for checks that must not go through the service: crash consistency,
 * re-wrapping after a KEK rotation, canary scans.
 */
export interface RawStore {
  config(workspaceId: string): Promise<RawConfig | undefined>;
  /** `key_kek_id` of every stored key envelope (AI configs and service secrets). */
  kekIds(): Promise<string[]>;
  /** Tables where some row, cast to text, contains `needle`. */
  tablesContaining(needle: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Every table the service has made, read from the schema: one added later is scanned too. */
const SQLITE_TABLES =
  "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
const POSTGRES_TABLES = `SELECT table_name AS name FROM information_schema.tables
  WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`;
const sqliteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

const CONFIG_SQL = (p: (n: number) => string) =>
  `SELECT mode, provider, model, key_ciphertext, key_wrapped_dek, key_kek_id, key_fingerprint, revision
   FROM ai_configs WHERE owner_kind = 'workspace' AND owner_id = ${p(1)}`;
const AUDIT_SQL = (p: (n: number) => string) =>
  `SELECT revision FROM audit_events WHERE owner_kind = 'workspace' AND owner_id = ${p(1)} AND revision IS NOT NULL ORDER BY revision`;
const KEK_SQL = `SELECT key_kek_id AS kek FROM ai_configs WHERE key_ciphertext IS NOT NULL
  UNION ALL SELECT kek_id AS kek FROM service_secrets`;

/** The SQLite database of a data folder, opened read-only next to the running service (WAL mode). */
export function sqliteRawStore(dataDir: string): RawStore {
  const open = () => new Database(join(dataDir, 'rigbox.db'), { readonly: true, fileMustExist: true });
  const withDb = <T>(work: (db: Database.Database) => T): T => {
    const db = open();
    try {
      return work(db);
    } finally {
      db.close();
    }
  };
  return {
    async config(id) {
      return withDb((db) => {
        const row = db.prepare(CONFIG_SQL(() => '?')).get(id) as
          | Omit<RawConfig, 'auditRevisions'>
          | undefined;
        if (!row) return undefined;
        const audit = db.prepare(AUDIT_SQL(() => '?')).all(id) as { revision: number }[];
        return {
          ...row,
          revision: Number(row.revision),
          auditRevisions: audit.map((r) => Number(r.revision)),
        };
      });
    },
    async kekIds() {
      return withDb((db) => (db.prepare(KEK_SQL).all() as { kek: string }[]).map((r) => r.kek));
    },
    async tablesContaining(needle) {
      return withDb((db) =>
        (db.prepare(SQLITE_TABLES).all() as { name: string }[])
          .map((r) => r.name)
          .filter((t) => {
            const table = sqliteIdentifier(t);
            const columns = (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map(
              (c) => `COALESCE(CAST(${sqliteIdentifier(c.name)} AS TEXT), '')`,
            );
            return db
              .prepare(`SELECT 1 FROM ${table} WHERE instr(${columns.join(' || ')}, ?) > 0 LIMIT 1`)
              .get(needle);
          }),
      );
    },
    async close() {},
  };
}

/** A PostgreSQL database, through one connection of its own (application_name `rigbox-test`). */
export async function postgresRawStore(url: string): Promise<RawStore> {
  const client = new Client({ connectionString: url, application_name: 'rigbox-test' });
  client.on('error', () => {});
  await client.connect();
  const p = (n: number) => `$${n}`;
  return {
    async config(id) {
      const row = (await client.query(CONFIG_SQL(p), [id])).rows[0] as
        | Omit<RawConfig, 'auditRevisions'>
        | undefined;
      if (!row) return undefined;
      const audit = (await client.query(AUDIT_SQL(p), [id])).rows as { revision: number }[];
      return { ...row, revision: Number(row.revision), auditRevisions: audit.map((r) => Number(r.revision)) };
    },
    async kekIds() {
      return (await client.query(KEK_SQL)).rows.map((r) => String(r.kek));
    },
    async tablesContaining(needle) {
      const hits: string[] = [];
      const tables = (await client.query<{ name: string }>(POSTGRES_TABLES)).rows.map((r) => r.name);
      for (const t of tables) {
        // The whole row as text: every column of every row.
        const res = await client.query(
          `SELECT 1 FROM ${escapeIdentifier(t)} r WHERE strpos(r::text, $1) > 0 LIMIT 1`,
          [needle],
        );
        if (res.rowCount) hits.push(t);
      }
      return hits;
    },
    async close() {
      await client.end();
    },
  };
}

/**
 * Waits until no session of a `rigbox` process is left on the database: after a SIGKILL, the
 * server notices the closed sockets and ends their sessions (rolling back what was not committed).
 * Before that, a transaction the dead process had sent its COMMIT for could still land.
 */
export async function waitForNoRigboxSessions(url: string, timeoutMs = 10_000): Promise<void> {
  const client = new Client({ connectionString: url, application_name: 'rigbox-test-wait' });
  client.on('error', () => {});
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await client.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'rigbox'",
      );
      if (res.rows[0].n === 0) return;
      if (Date.now() > deadline)
        throw new Error(`${res.rows[0].n} rigbox sessions still open after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await client.end();
  }
}
