import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { Client, escapeIdentifier } from 'pg';
import { createUserToken } from '../../service/src/auth/tokens.js';
import { createLogger } from '../../service/src/logging/logger.js';
import { createService, type Service } from '../../service/src/service.js';
import type { SqliteStorage } from '../../service/src/storage/sqlite.js';
import type { ConfigOwner } from '../../service/src/storage/types.js';

/** Every line the service logged, kept so tests can scan them for secrets. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text() {
    return this.lines.join('\n');
  }
}

/** A canary key: random so no test can pass by matching a constant, clearly marked as a test value. */
export function canaryKey(prefix = 'sk-ant-api03-'): string {
  return `${prefix}CANARY${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`;
}

export interface Harness {
  service: Service;
  logs: LogCapture;
  dataDir: string;
  /** The harness's own PostgreSQL database, or undefined on the embedded SQLite. */
  databaseUrl: string | undefined;
  token(user: string): Promise<string>;
  /** Every `table.column` of the database where some stored value contains `needle`, for canary scans. */
  columnsContaining(needle: string): Promise<string[]>;
  /** An AI-config row exactly as stored, read past the service (its own connection to the store). */
  rawConfigRow(owner: ConfigOwner): Promise<Record<string, unknown> | undefined>;
  /** Overwrites stored columns of an AI-config row, as an attacker with access to the store could. */
  tamperConfigRow(owner: ConfigOwner, columns: Record<string, string | null>): Promise<void>;
  close(): Promise<void>;
}

/**
 * An empty, unmigrated store for one test: the embedded SQLite's data folder, plus, when
 * RIGBOX_TEST_DATABASE_URL names a PostgreSQL server (the `postgres` test project sets it), a new
 * database on that server. `remove()` drops the database and deletes the folder.
 */
export interface TestStore {
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  remove(): Promise<void>;
}

export async function freshStore(): Promise<TestStore> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rigbox-test-'));
  const serverUrl = process.env.RIGBOX_TEST_DATABASE_URL?.trim();
  let database: { url: string; drop(): Promise<void> } | undefined;
  try {
    database = serverUrl ? await createTestDatabase(serverUrl) : undefined;
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    dataDir,
    databaseUrl: database?.url,
    async remove() {
      try {
        await database?.drop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** A service on a fresh store (see `freshStore`), removed again on close. */
export async function startHarness(
  opts: { rateLimitPerMinute?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Harness> {
  const store = await freshStore();
  const logs = new LogCapture();
  let service: Service;
  try {
    service = await createService({
      dataDir: store.dataDir,
      databaseUrl: store.databaseUrl,
      env: opts.env ?? { RIGBOX_MASTER_KEY: randomBytes(32).toString('hex') },
      logger: createLogger({ level: 'debug', destination: logs }),
      rateLimitPerMinute: opts.rateLimitPerMinute ?? 100_000,
    });
  } catch (err) {
    await store.remove();
    throw err;
  }
  const { databaseUrl } = store;
  return {
    service,
    logs,
    dataDir: store.dataDir,
    databaseUrl,
    token: async (user) => (await createUserToken(service.storage, user)).token,
    columnsContaining: (needle) =>
      databaseUrl
        ? postgresColumnsContaining(databaseUrl, needle)
        : Promise.resolve(sqliteColumnsContaining((service.storage as SqliteStorage).file, needle)),
    rawConfigRow: (owner) =>
      databaseUrl
        ? withClient(
            databaseUrl,
            async (c) => (await c.query(RAW_CONFIG_SQL('$1', '$2'), [owner.kind, owner.id])).rows[0],
          )
        : Promise.resolve(
            withSqlite(
              (service.storage as SqliteStorage).file,
              (db) =>
                db.prepare(RAW_CONFIG_SQL('?', '?')).get(owner.kind, owner.id) as
                  | Record<string, unknown>
                  | undefined,
            ),
          ),
    async tamperConfigRow(owner, columns) {
      const names = Object.keys(columns);
      const values = [...Object.values(columns), owner.kind, owner.id];
      if (databaseUrl) {
        const sets = names.map((c, i) => `${escapeIdentifier(c)} = $${i + 1}`);
        const where = `owner_kind = $${names.length + 1} AND owner_id = $${names.length + 2}`;
        await withClient(databaseUrl, (c) =>
          c.query(`UPDATE ai_configs SET ${sets.join(', ')} WHERE ${where}`, values),
        );
      } else {
        const sets = names.map((c) => `${sqliteIdentifier(c)} = ?`);
        withSqlite((service.storage as SqliteStorage).file, (db) =>
          db
            .prepare(`UPDATE ai_configs SET ${sets.join(', ')} WHERE owner_kind = ? AND owner_id = ?`)
            .run(...values),
        );
      }
    },
    async close() {
      try {
        await service.close();
      } finally {
        await store.remove();
      }
    },
  };
}

const RAW_CONFIG_SQL = (kind: string, id: string) =>
  `SELECT * FROM ai_configs WHERE owner_kind = ${kind} AND owner_id = ${id}`;
const sqliteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Runs `work` on a connection of its own to the SQLite file the service has open (WAL mode). */
function withSqlite<T>(file: string, work: (db: Database.Database) => T): T {
  const db = new Database(file, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/** Runs `work` on a short-lived connection to the database at `url`. */
async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A new empty database on the server at `serverUrl`, named so that parallel test files never collide. */
async function createTestDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `rigbox_test_${randomBytes(8).toString('hex')}`;
  await withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${escapeIdentifier(name)}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    // FORCE: a connection a test leaked must not keep the database from going away.
    drop: async () => {
      await withClient(serverUrl, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`),
      );
    },
  };
}

async function postgresColumnsContaining(url: string, needle: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const columns = await c.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
       WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
    );
    const hits: string[] = [];
    for (const { table_name: table, column_name: column } of columns.rows) {
      // Every column, cast to text, so a value in a non-text column would be found as well.
      const found = await c.query(
        `SELECT 1 FROM ${escapeIdentifier(table)} WHERE strpos(${escapeIdentifier(column)}::text, $1) > 0 LIMIT 1`,
        [needle],
      );
      if (found.rowCount) hits.push(`${table}.${column}`);
    }
    return hits;
  });
}

function sqliteColumnsContaining(file: string, needle: string): string[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
      name: string;
    }[];
    const hits: string[] = [];
    for (const { name: table } of tables) {
      for (const { name: column } of db.prepare(`PRAGMA table_info(${q(table)})`).all() as {
        name: string;
      }[]) {
        const found = db
          .prepare(`SELECT 1 FROM ${q(table)} WHERE instr(CAST(${q(column)} AS TEXT), ?) > 0 LIMIT 1`)
          .get(needle);
        if (found) hits.push(`${table}.${column}`);
      }
    }
    return hits;
  } finally {
    db.close();
  }
}

/** All bytes of every file in a folder (database, WAL, shared memory), for canary scans. */
export function folderBytes(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(readFileSync(join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
}
