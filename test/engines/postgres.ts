import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import {
  type EngineProcess,
  spawnEngine,
  toolPath,
  trackScratchDir,
  waitUntilReady,
} from './engine-process.js';
import { freePort } from './ports.js';

/** The superuser every test cluster is created with (trust auth, loopback only). */
const SUPERUSER = 'rigbox';
/** The OS account that runs the server when the tests run as root, which PostgreSQL refuses. */
const SERVER_ACCOUNT = process.env.RIGBOX_POSTGRES_OS_USER ?? 'postgres';
/** Created when running as root on a machine without the Debian package's `postgres` account. */
const FALLBACK_ACCOUNT = 'rigbox-postgres';

/** A throwaway PostgreSQL cluster on loopback: its own data folder, deleted on stop. */
export interface PostgresEngine {
  /** `postgres://rigbox@127.0.0.1:<port>/rigbox`: a superuser on a database made for the caller. */
  readonly url: string;
  /** Creates an empty database (a lower-case SQL identifier) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Everything the server logged so far. */
  output(): string;
  /** Shuts the server down (fast: open sessions are disconnected) and deletes its files. Safe to call twice. */
  stop(): Promise<void>;
}

const execFileAsync = (file: string, args: readonly string[], cwd: string) =>
  new Promise<string>((resolve, reject) => {
    execFile(file, args, { cwd, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error)
        reject(new Error(`${file} ${args.join(' ')} failed (exit ${error.code}):\n${stdout}${stderr}`));
      else resolve(stdout + stderr);
    });
  });

function onPath(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin']) {
    if (dir === '') continue;
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

function accountExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const idOf = (name: string, flag: '-u' | '-g') =>
  Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());

/**
 * How to run PostgreSQL's binaries: through `setpriv`, which execs (so the server is our direct child,
 * and killing it kills the server) and sets a parent-death signal, so the server shuts down even if
 * this process is killed outright. As root it also drops to an unprivileged account.
 */
interface Launcher {
  readonly account: string | undefined;
  command(binary: string, args: readonly string[]): [string, string[]];
}

function launcher(): Launcher {
  const setpriv = onPath('setpriv');
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    return {
      account: undefined,
      command: (binary, args) =>
        setpriv ? [setpriv, ['--pdeathsig', 'SIGQUIT', '--', binary, ...args]] : [binary, [...args]],
    };
  }
  if (!setpriv) {
    throw new Error(
      'running the tests as root needs `setpriv` (util-linux) to start PostgreSQL as another user',
    );
  }
  let account = SERVER_ACCOUNT;
  if (!accountExists(account)) {
    account = FALLBACK_ACCOUNT;
    if (!accountExists(account)) {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', account], {
        stdio: 'ignore',
      });
    }
  }
  const drop = ['--reuid', account, '--regid', account, '--init-groups'];
  return {
    account,
    command: (binary, args) => [setpriv, [...drop, '--pdeathsig', 'SIGQUIT', '--', binary, ...args]],
  };
}

/** The temp folder, or /tmp when the server's account could not reach into it (a private TMPDIR). */
function scratchBase(account: string | undefined): string {
  const base = tmpdir();
  if (account === undefined) return base;
  for (let dir = base; dir !== '/'; dir = join(dir, '..')) {
    if ((statSync(dir).mode & 0o001) === 0) return '/tmp';
  }
  return base;
}

/** The real path, so the server's account need not traverse `.tools/` (the binaries find each other by it). */
const binary = (name: string) => realpathSync(toolPath(name));

async function probe(port: number): Promise<boolean> {
  const client = new Client({
    host: '127.0.0.1',
    port,
    user: SUPERUSER,
    database: 'postgres',
    connectionTimeoutMillis: 2_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

// A synchronous pause, for the one place that may not await: the process 'exit' handler.
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Starts `postgres` from `.tools/bin` (Debian's PostgreSQL, linked by `npm run tools`) on a free
 * loopback port with a fresh cluster from `initdb`, and creates the database `rigbox`.
 * Test settings: `-F` (fsync off) and `synchronous_commit=off`, since the cluster is thrown away;
 * a crash of this machine mid-run loses nothing worth keeping.
 */
export async function startPostgres(): Promise<PostgresEngine> {
  const initdb = binary('initdb');
  const postgres = binary('postgres');
  const run = launcher();
  const dir = mkdtempSync(join(scratchBase(run.account), 'rigbox-pg-'));
  const removeDir = trackScratchDir(dir);
  const data = join(dir, 'data');
  try {
    chmodSync(dir, 0o700);
    if (run.account !== undefined) chownSync(dir, idOf(run.account, '-u'), idOf(run.account, '-g'));
    const [file, args] = run.command(initdb, [
      ...['-D', data, '-U', SUPERUSER, '--auth=trust', '--encoding=UTF8', '--locale=C'],
      ...['--no-sync', '--no-instructions'],
    ]);
    await execFileAsync(file, args, dir);
  } catch (error) {
    removeDir();
    throw error;
  }

  let engine: EngineProcess | undefined;
  let port = 0;
  let lastError: unknown;
  // Another process can take the chosen port between the probe and the server's bind; try again then.
  for (let attempt = 0; attempt < 3 && engine === undefined; attempt++) {
    port = await freePort();
    const [file, args] = run.command(postgres, [
      ...['-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port), '-F'],
      // Parallel test files each hold a connection pool; the default of 100 is near enough to run out.
      ...['-c', 'synchronous_commit=off', '-c', 'max_connections=200'],
    ]);
    const candidate = spawnEngine('postgres', file, args, { ...process.env, LC_ALL: 'C' });
    try {
      await waitUntilReady(candidate, () => probe(port));
      engine = candidate;
    } catch (error) {
      lastError = error;
      await candidate.stop();
    }
  }
  if (engine === undefined) {
    removeDir();
    throw lastError;
  }
  const server = engine;
  const pidFile = join(data, 'postmaster.pid');
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);

  // If the process exits without stop() (a crash, process.exit), the engine fixtures SIGKILL the
  // server, which leaves its System V shared memory segment behind. An immediate shutdown first
  // releases it; it takes milliseconds. Prepended so it runs before that SIGKILL.
  const onExit = () => {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      return;
    }
    for (let waited = 0; waited < 3_000 && existsSync(pidFile); waited += 20) pause(20);
  };
  process.prependListener('exit', onExit);

  const admin = async <T>(work: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ host: '127.0.0.1', port, user: SUPERUSER, database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const urlOf = (database: string) => `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.removeListener('exit', onExit);
      try {
        // Fast shutdown: disconnects sessions a test left open instead of waiting for them (SIGTERM).
        if (!server.hasExited()) process.kill(pid, 'SIGINT');
      } catch {
        // Already gone.
      }
      await server.stop();
      removeDir();
    })();
    return stopping;
  };

  const createDatabase = async (name: string) => {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
      throw new Error(`database name ${JSON.stringify(name)} is not a lower-case SQL identifier`);
    }
    await admin((c) => c.query(`CREATE DATABASE ${escapeIdentifier(name)}`));
    return urlOf(name);
  };

  try {
    return { url: await createDatabase('rigbox'), createDatabase, output: () => server.output(), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
