/**
 * Scale benchmark: how the API's per-call cost moves with the number of workspaces in an account.
 * For each size (default 100, 1,000, 10,000, 100,000) and backend (the embedded SQLite, and a
 * throwaway PostgreSQL started here from `npm run tools`, or the server in BENCH_DATABASE_URL), an
 * account is filled through the storage layer (bulk transactions, not HTTP calls), then served by a
 * service process of its own. One client then times, one call at a time, in interleaved rounds (each
 * round calls every size once per kind, so a slower moment of the machine lands on all sizes alike):
 *   GET one ai-config, GET /api/workspaces?ids= (100 ids: the same each call, and random), the first page (100) and a middle page (50) of
 *   GET /api/workspaces and of the BYOK policy report, the first and a middle page (100 events) of
 *   the account's audit export, and the first and the second page of a workspace's audit trail.
 * Prints the median of each at each size, the ratio of the largest size to the smallest (target:
 * at most 1.5x), and each service's RSS after its calls. Then `tofu plan` (refresh, no changes) of
 * 500 rigbox_workspace_ai_config in an account of 500 and in one of 100,000 workspaces, taking
 * turns, and the ratio (target: at most 1.1x); --plan-engine none leaves it out.
 * Usage: npm run bench:scale [-- --sizes 100,1000,10000,100000 --backends sqlite,postgres --rounds 100
 *   --plan-engine tofu|terraform|none --plan-accounts 500,100000 --plan-resources 500 --plan-rounds 11]
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Client, escapeIdentifier } from 'pg';
import { AuditChain } from '../../service/src/audit/chain.js';
import { encodeCursor } from '../../service/src/http/paging.js';
import { newId } from '../../service/src/ids.js';
import { openStorage } from '../../service/src/storage/open.js';
import type { AiConfigRecord, AuditEvent, Workspace } from '../../service/src/storage/types.js';
import { type PostgresEngine, startPostgres } from '../../test/engines/postgres.js';
import { requireEngine, TofuWorkspace } from '../../test/support/tofu.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string' },
    backends: { type: 'string' },
    rounds: { type: 'string' },
    'plan-engine': { type: 'string' },
    'plan-accounts': { type: 'string' },
    'plan-resources': { type: 'string' },
    'plan-rounds': { type: 'string' },
  },
});
const sizes = (values.sizes ?? '100,1000,10000,100000')
  .split(',')
  .map((s) => Number(s.trim()))
  .sort((a, b) => a - b);
for (const size of sizes) {
  if (!Number.isInteger(size) || size < 100) throw new Error(`--sizes: ${size} is not a whole number >= 100`);
}
const backends = (values.backends ?? 'sqlite,postgres').split(',').map((b) => b.trim());
for (const b of backends) {
  if (b !== 'sqlite' && b !== 'postgres') throw new Error(`--backends: unknown backend ${b}`);
}
const rounds = Number(values.rounds ?? 100);
const planEngine = values['plan-engine'] ?? 'tofu';
if (planEngine !== 'tofu' && planEngine !== 'terraform' && planEngine !== 'none') {
  throw new Error(`--plan-engine: tofu, terraform or none, not ${planEngine}`);
}
const planAccounts =
  planEngine === 'none'
    ? []
    : (values['plan-accounts'] ?? '500,100000').split(',').map((s) => Number(s.trim()));
const planResources = Number(values['plan-resources'] ?? 500);
const planRounds = Number(values['plan-rounds'] ?? 11);
for (const size of planAccounts) {
  if (!Number.isInteger(size) || size < planResources) {
    throw new Error(`--plan-accounts: ${size} is smaller than --plan-resources (${planResources})`);
  }
}
if (planEngine !== 'none') requireEngine(planEngine);
/** Every account to fill: the sizes whose calls are timed, and those the plans run against. */
const accountSizes = [...new Set([...sizes, ...planAccounts])].sort((a, b) => a - b);
const WARMUP_ROUNDS = 5;
const IDS_PER_CALL = 100;
/** Events in the audited workspace's trail: a few pages of the default 100. */
const AUDIT_EVENTS = 300;
const CHUNK = 10_000;
const USER = 'bench';
/** A middle page holds this many: the smallest account (100) has room for it after its cursor. */
const MIDDLE_PAGE = 50;
/** Where a middle page's cursor points: a full page after it, around the middle of the account. */
const middleAt = (size: number) => Math.floor(size / 2) - MIDDLE_PAGE / 2 - 1;

interface Store {
  dataDir: string;
  databaseUrl?: string;
}

interface Account {
  size: number;
  store: Store;
  ids: string[];
  audited: string;
  middleCursor: string;
  /** The same position in the BYOK policy report, and the middle of the account's audit export. */
  reportCursor: string;
  exportCursor: string;
  server: { url: string; token: string; child: ChildProcessByStdio<null, Readable, null> };
}

const config = (revision: number, model: string | null = null): AiConfigRecord => ({
  mode: 'managed',
  provider: 'anthropic',
  model,
  key: null,
  keyFingerprint: null,
  keyUpdatedAt: null,
  revision,
  updatedAt: new Date().toISOString(),
});

/** Fills a store with `size` workspaces of one user, one of them with a long audit trail. */
async function fill(size: number, store: Store): Promise<Omit<Account, 'server'>> {
  const storage = await openStorage(store);
  storage.setAuditChain(new AuditChain(randomBytes(32)));
  try {
    const now = new Date().toISOString();
    const user = await storage.ensureUser(USER, now);
    const start = Date.now() - size;
    const ids: string[] = [];
    let middle: Workspace | undefined;
    for (let at = 0; at < size; at += CHUNK) {
      const entries = Array.from({ length: Math.min(CHUNK, size - at) }, (_, j) => {
        const i = at + j;
        const workspace: Workspace = {
          id: newId('ws'),
          userId: user.id,
          name: `scale-${i}`,
          createdAt: new Date(start + i).toISOString(),
        };
        if (i === middleAt(size)) middle = workspace;
        ids.push(workspace.id);
        const audit: AuditEvent = {
          id: newId('aud'),
          ownerKind: 'workspace',
          ownerId: workspace.id,
          actorUserId: user.id,
          actorName: USER,
          action: 'workspace.created',
          changes: { name: [null, workspace.name] },
          keyEvent: null,
          revision: 1,
          at: workspace.createdAt,
        };
        return { workspace, config: config(1), audit };
      });
      await storage.createWorkspaces(entries);
    }
    const audited = ids[0] as string;
    const owner = { kind: 'workspace' as const, id: audited };
    for (let revision = 2; revision <= AUDIT_EVENTS; revision++) {
      const model = `claude-${revision}`;
      const audit: AuditEvent = {
        id: newId('aud'),
        ownerKind: 'workspace',
        ownerId: audited,
        actorUserId: user.id,
        actorName: USER,
        action: 'ai_config.updated',
        changes: { model: [null, model] },
        keyEvent: null,
        revision,
        at: new Date().toISOString(),
      };
      if (!(await storage.putAiConfig(owner, config(revision, model), revision - 1, audit))) {
        throw new Error('filling the audit trail: a write lost its compare-and-set');
      }
    }
    const mid = middle as Workspace;
    const middleCursor = encodeCursor(`workspaces:${user.id}`, [mid.createdAt, mid.id]);
    const reportCursor = encodeCursor(`byok-report:${user.id}`, [mid.createdAt, mid.id]);
    // The account's chain holds a created event per workspace and the audited one's updates.
    const exportSeq = Math.floor((size + AUDIT_EVENTS - 1) / 2);
    const exportCursor = encodeCursor(`audit-export:${user.id}`, [String(exportSeq)]);
    return { size, store, ids, audited, middleCursor, reportCursor, exportCursor };
  } finally {
    await storage.close();
  }
}

function startServer(store: Store, masterKey: string): Promise<Account['server']> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'server.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      BENCH_DATA_DIR: store.dataDir,
      BENCH_DATABASE_URL: store.databaseUrl ?? '',
      BENCH_MASTER_KEY: masterKey,
      BENCH_USER: USER,
    },
  });
  return new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) ok({ ...JSON.parse(out.split('\n')[0] as string), child });
    });
    child.on('exit', (code) => fail(new Error(`bench server exited with ${code}`)));
  });
}

function stop(child: ChildProcessByStdio<null, Readable, null>): Promise<void> {
  return new Promise((ok) => {
    if (child.exitCode !== null) return ok();
    child.removeAllListeners('exit');
    child.once('exit', () => ok());
    child.kill('SIGTERM');
  });
}

/** Resident set size of a process in MiB, from /proc (Linux). */
function rssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

const pick = <T>(all: readonly T[]) => all[Math.floor(Math.random() * all.length)] as T;
const sample = (all: readonly string[], n: number) => {
  const chosen = new Set<string>();
  while (chosen.size < n) chosen.add(pick(all));
  return [...chosen];
};

interface Kind {
  name: string;
  /** The path to call on an account, and what its answer must hold. */
  path(a: Account, state: Map<string, string>): string;
  check(body: Record<string, unknown>, a: Account): void;
}

const count = (key: string, n: (a: Account) => number) => (body: Record<string, unknown>, a: Account) => {
  const got = (body[key] as unknown[] | undefined)?.length;
  if (got !== n(a)) throw new Error(`expected ${n(a)} ${key}, got ${got}`);
};

const KINDS: Kind[] = [
  {
    name: 'GET one ai-config',
    path: (a) => `/api/workspaces/${pick(a.ids)}/ai-config`,
    check: (body) => {
      if (body.mode !== 'managed') throw new Error('not an ai-config view');
    },
  },
  {
    // As a plan refreshes: the same workspaces each time (its resources), so their rows are warm.
    name: `GET ?ids= (${IDS_PER_CALL}, a plan's)`,
    path: (a, state) => {
      const key = `plan-ids:${a.size}`;
      if (!state.has(key)) state.set(key, sample(a.ids, IDS_PER_CALL).join(','));
      return `/api/workspaces?ids=${state.get(key)}`;
    },
    check: count('workspaces', () => IDS_PER_CALL),
  },
  {
    // Other workspaces each call, anywhere in the account: most of their rows are not in SQLite's
    // page cache (2 MiB) at 100,000, and its B-trees are a level deeper.
    name: `GET ?ids= (${IDS_PER_CALL}, random)`,
    path: (a) => `/api/workspaces?ids=${sample(a.ids, IDS_PER_CALL).join(',')}`,
    check: count('workspaces', () => IDS_PER_CALL),
  },
  {
    name: 'list: first page (100)',
    path: () => '/api/workspaces',
    check: count('workspaces', () => 100),
  },
  {
    name: `list: a middle page (${MIDDLE_PAGE})`,
    path: (a) => `/api/workspaces?limit=${MIDDLE_PAGE}&cursor=${a.middleCursor}`,
    check: count('workspaces', () => MIDDLE_PAGE),
  },
  {
    name: 'report: first page (100)',
    path: () => '/api/users/me/byok-policy/report',
    check: count('workspaces', () => 100),
  },
  {
    name: `report: a middle page (${MIDDLE_PAGE})`,
    path: (a) => `/api/users/me/byok-policy/report?limit=${MIDDLE_PAGE}&cursor=${a.reportCursor}`,
    check: count('workspaces', () => MIDDLE_PAGE),
  },
  {
    name: 'export: first page (100)',
    path: () => '/api/users/me/audit/export?limit=100',
    check: count('lines', () => 100),
  },
  {
    name: 'export: a middle page (100)',
    path: (a) => `/api/users/me/audit/export?limit=100&since=${a.exportCursor}`,
    check: count('lines', () => 100),
  },
  {
    name: 'audit: first page (100)',
    path: (a) => `/api/workspaces/${a.audited}/audit`,
    check: count('events', () => 100),
  },
  {
    name: 'audit: second page (100)',
    path: (a, state) => `/api/workspaces/${a.audited}/audit?cursor=${state.get(`audit:${a.size}`)}`,
    check: count('events', () => 100),
  },
];

async function call(a: Account, path: string): Promise<{ ms: number; body: Record<string, unknown> }> {
  const started = performance.now();
  const res = await fetch(`${a.server.url}${path}`, {
    headers: { authorization: `Bearer ${a.server.token}` },
  });
  const text = await res.text();
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`${path.slice(0, 80)}: ${res.status} ${text.slice(0, 200)}`);
  // The audit export is NDJSON: its events, a line each.
  const ndjson = res.headers.get('content-type')?.startsWith('application/x-ndjson');
  return { ms, body: ndjson ? { lines: text.split('\n').filter(Boolean) } : JSON.parse(text) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function measure(accounts: Account[]) {
  const state = new Map<string, string>();
  for (const a of accounts) {
    const first = await call(a, `/api/workspaces/${a.audited}/audit`);
    state.set(`audit:${a.size}`, String(first.body.next_cursor));
  }
  const times = new Map<string, number[]>();
  for (let round = 0; round < WARMUP_ROUNDS + rounds; round++) {
    for (const kind of KINDS) {
      for (const a of accounts) {
        const { ms, body } = await call(a, kind.path(a, state));
        kind.check(body, a);
        if (round < WARMUP_ROUNDS) continue;
        const key = `${kind.name}@${a.size}`;
        times.set(key, [...(times.get(key) ?? []), ms]);
      }
    }
  }
  return (kind: string, size: number) => median(times.get(`${kind}@${size}`) ?? []);
}

/**
 * `plan` of the same number of resources (the account's oldest workspaces, in managed mode) in each
 * account, after one untimed apply; the accounts' plans take turns. Returns the median ms per size.
 */
async function planTimes(engine: 'tofu' | 'terraform', accounts: Account[]): Promise<Map<number, number>> {
  const workspaces = new Map<number, TofuWorkspace>();
  const times = new Map<number, number[]>();
  try {
    for (const a of accounts) {
      const ws = new TofuWorkspace({ RIGBOX_ENDPOINT: a.server.url, RIGBOX_TOKEN: a.server.token }, engine);
      workspaces.set(a.size, ws);
      ws.write(
        'terraform {\n  required_providers {\n    rigbox = { source = "rigbox/rigbox" }\n  }\n}\nprovider "rigbox" {}\n' +
          a.ids
            .slice(0, planResources)
            .map(
              (id, i) =>
                `resource "rigbox_workspace_ai_config" "w${i}" {\n  workspace_id = "${id}"\n  mode = "managed"\n  ai_provider = "openai"\n  model = "gpt-4o"\n}\n`,
            )
            .join(''),
      );
      await ws.init();
      await ws.apply('-parallelism=10');
    }
    for (let round = 0; round < planRounds; round++) {
      for (const a of accounts) {
        const ws = workspaces.get(a.size) as TofuWorkspace;
        const started = performance.now();
        const res = await ws.plan('-parallelism=10');
        if (res.code !== 0)
          throw new Error(`plan after apply was not empty (exit ${res.code}):\n${res.stdout}`);
        times.set(a.size, [...(times.get(a.size) ?? []), performance.now() - started]);
      }
    }
  } finally {
    for (const ws of workspaces.values()) ws.dispose();
  }
  return new Map([...times].map(([size, ms]) => [size, median(ms)]));
}

/** A store per size for one backend: SQLite data folders, or databases on one PostgreSQL server. */
async function stores(backend: string, pgServer: () => Promise<string>) {
  const made: { store: Store; drop(): Promise<void> }[] = [];
  for (const size of accountSizes) {
    const dataDir = mkdtempSync(join(tmpdir(), `rigbox-scale-${size}-`));
    if (backend === 'sqlite') {
      made.push({ store: { dataDir }, drop: async () => rmSync(dataDir, { recursive: true, force: true }) });
      continue;
    }
    const server = await pgServer();
    const name = `rigbox_scale_${size}_${randomBytes(4).toString('hex')}`;
    const admin = async (sql: string) => {
      const c = new Client({ connectionString: server });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    };
    await admin(`CREATE DATABASE ${escapeIdentifier(name)}`);
    const url = new URL(server);
    url.pathname = `/${name}`;
    made.push({
      store: { dataDir, databaseUrl: url.toString() },
      drop: async () => {
        await admin(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
        rmSync(dataDir, { recursive: true, force: true });
      },
    });
  }
  return made;
}

let pg: PostgresEngine | undefined;
const pgServer = async () => {
  const given = process.env.BENCH_DATABASE_URL?.trim();
  if (given) return given;
  pg ??= await startPostgres();
  return pg.url;
};

const report: string[] = [];
const out = (line = '') => {
  report.push(line);
  console.log(line);
};
let missed = false;
const largest = Math.max(...sizes);
const smallest = Math.min(...sizes);

try {
  for (const backend of backends) {
    const made = await stores(backend, pgServer);
    const accounts: Account[] = [];
    try {
      const masterKey = randomBytes(32).toString('hex');
      for (const { store } of made) {
        const size = accountSizes[made.findIndex((m) => m.store === store)] as number;
        const began = performance.now();
        const filled = await fill(size, store);
        if (store.databaseUrl) {
          // What autovacuum does to tables that grew, done now rather than while the calls are timed.
          const c = new Client({ connectionString: store.databaseUrl });
          await c.connect();
          await c.query('VACUUM ANALYZE');
          await c.end();
        }
        console.error(
          `bench/scale: ${backend}: filled ${size} workspaces in ${((performance.now() - began) / 1000).toFixed(1)} s`,
        );
        accounts.push({ ...filled, server: await startServer(store, masterKey) });
      }
      const at = await measure(accounts.filter((a) => sizes.includes(a.size)));
      out();
      out(
        `bench/scale (${backend}): median ms of ${rounds} interleaved rounds, one client, ${cpus().length} CPUs`,
      );
      const head = ['call'.padEnd(28), ...sizes.map((s) => s.toLocaleString('en-US').padStart(9))];
      out(`${head.join(' ')}   ${`${largest.toLocaleString('en-US')} / ${smallest}`.padStart(14)}`);
      for (const kind of KINDS) {
        const cells = sizes.map((s) => at(kind.name, s).toFixed(2).padStart(9));
        const ratio = at(kind.name, largest) / at(kind.name, smallest);
        const ok = ratio <= 1.5;
        if (!ok) missed = true;
        out(
          `${kind.name.padEnd(28)} ${cells.join(' ')}   ${`${ratio.toFixed(2)}x`.padStart(14)} ${ok ? '' : 'MISSED (target <= 1.5x)'}`.trimEnd(),
        );
      }
      const rss = accounts.filter((a) => sizes.includes(a.size)).map((a) => rssMiB(a.server.child.pid));
      out(
        `${'service RSS after, MiB'.padEnd(28)} ${rss.map((r) => r.toFixed(0).padStart(9)).join(' ')}   ${`${((rss.at(-1) as number) / (rss[0] as number)).toFixed(2)}x`.padStart(14)}`,
      );
      if (planEngine !== 'none') {
        const plans = await planTimes(
          planEngine,
          accounts.filter((a) => planAccounts.includes(a.size)),
        );
        const [small, big] = [Math.min(...planAccounts), Math.max(...planAccounts)];
        const ratio = (plans.get(big) as number) / (plans.get(small) as number);
        if (ratio > 1.1) missed = true;
        out(
          `${planEngine} plan of ${planResources} rigbox_workspace_ai_config, median of ${planRounds}: ` +
            planAccounts
              .map(
                (n) =>
                  `${((plans.get(n) as number) / 1000).toFixed(2)} s in an account of ${n.toLocaleString('en-US')}`,
              )
              .join(', ') +
            `; ${ratio.toFixed(2)}x ${ratio <= 1.1 ? '' : 'MISSED (target <= 1.1x)'}`.trimEnd(),
        );
      }
    } finally {
      await Promise.all(accounts.map((a) => stop(a.server.child)));
      for (const m of made) await m.drop();
    }
  }
} finally {
  await pg?.stop();
}
out();
out('target: every per-call cost at the largest size <= 1.5x its cost at the smallest.');
if (missed) process.exitCode = 1;
