/**
 * API benchmark: in one run, autocannon against
 *   (a) a bare Fastify route returning a constant config-shaped JSON (the baseline),
 *   (b) GET /api/workspaces/{id}/ai-config,
 *   (c) PUT /api/workspaces/{id}/ai-config with a key (a new key each request, so each one writes),
 * (b) and (c) on the embedded SQLite, on a throwaway PostgreSQL started here (test/engines/postgres.ts,
 * from `npm run tools`), and on two service processes sharing that PostgreSQL database (autocannon
 * spreads its connections over both). Prints req/s, p50, p99 and the ratios. Targets: GET >= 0.7x
 * bare; PUT with key >= 0.3x GET. A diagnostic row: GET on a service whose one database read is
 * answered from memory (servers.ts), the most this stack reaches with any storage behind it.
 * With `vault` in --backends, the side-by-side peer (issue 18): a real Vault server (file storage,
 * initialised, unsealed, a non-root token with a policy; vault-peer.ts) against a service on SQLite
 * whose account has a BYOK policy in force: GET ai-config vs a KV v2 read, and PUT ai-config with a
 * new key each request vs a KV v2 write of a new value each request. Targets: GET >= 3x Vault's
 * read, PUT with a policy >= 2x Vault's write. Beside them, two diagnostics: bare Fastify in the
 * same run (the ceiling of any Fastify route against that read), and the same Vault with a file
 * audit device enabled, as production Vaults run (rigbox writes an audit row per write too).
 * Each row also shows the CPU time the server processes used per request (Linux /proc): on a
 * machine shared with autocannon and others, less noisy than req/s.
 * Usage: npm run bench:api [-- --seconds 10 --connections 10 --backends sqlite,postgres,vault]
 */
import { type ChildProcessByStdio, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { type PostgresEngine, startPostgres } from '../../test/engines/postgres.js';
import { startVaultPeer, type VaultPeer } from './vault-peer.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    connections: { type: 'string' },
    backends: { type: 'string' },
  },
});
const duration = Number(values.seconds ?? 10);
const connections = Number(values.connections ?? 10);
const backends = new Set((values.backends ?? 'sqlite,postgres').split(',').map((b) => b.trim()));
for (const b of backends) {
  if (b !== 'sqlite' && b !== 'postgres' && b !== 'vault')
    throw new Error(`--backends: unknown backend ${b}`);
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** CPU time (user + system, all threads) the measured server processes used per request. */
  cpuUs: number | undefined;
}

interface ServerInfo {
  bareUrl?: string;
  memoUrl?: string;
  memoToken?: string;
  url: string;
  token: string;
  storage: string;
  pid: number;
}

const running: ChildProcessByStdio<null, Readable, null>[] = [];

/** Starts one `servers.ts` process and waits for its JSON line. */
function startServer(env: Record<string, string>): Promise<ServerInfo> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'servers.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  running.push(child);
  return new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) ok({ ...JSON.parse(out.split('\n')[0] as string), pid: child.pid });
    });
    child.on('exit', (code) => fail(new Error(`bench server exited with ${code}`)));
  });
}

function stopServers(): Promise<void> {
  const all = running.splice(0);
  return Promise.all(
    all.map(
      (child) =>
        new Promise<void>((ok) => {
          if (child.exitCode !== null) return ok();
          child.removeAllListeners('exit');
          child.once('exit', () => ok());
          child.kill('SIGTERM');
        }),
    ),
  ).then(() => undefined);
}

/** Clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of these processes so far (Linux /proc); undefined elsewhere. */
function cpuSeconds(pids: readonly number[]): number | undefined {
  if (pids.length === 0) return undefined;
  try {
    let ticks = 0;
    for (const pid of pids) {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

/**
 * req/s depends on how much of the two cores the server gets beside autocannon (and whatever else
 * runs); CPU per request, from the server processes' own counters, much less so.
 */
async function measure(
  name: string,
  opts: autocannon.Options,
  pids: readonly number[] = [],
): Promise<Result> {
  const before = cpuSeconds(pids);
  const r = await autocannon({ duration, connections, ...opts });
  const after = cpuSeconds(pids);
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx + r.errors,
    cpuUs:
      before !== undefined && after !== undefined && r.requests.total > 0
        ? ((after - before) * 1e6) / r.requests.total
        : undefined,
  };
}

/** `count` workspaces with a key, ready to be read and written; returns their ai-config paths. */
async function prepare(url: string, token: string, count: number): Promise<string[]> {
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const created = await fetch(`${url}/api/workspaces`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({
          name: `bench-${i}`,
          ai_config: { mode: 'byok', provider: 'openai', api_key: `sk-proj-benchmark${i}x`, model: 'gpt-4o' },
        }),
      });
      if (created.status !== 201) throw new Error(`creating a bench workspace: ${created.status}`);
      return `/api/workspaces/${((await created.json()) as { id: string }).id}/ai-config`;
    }),
  );
}

let n = 0;
const putBody = () =>
  JSON.stringify({ mode: 'byok', provider: 'openai', api_key: `sk-proj-bench${++n}x`, model: 'gpt-4o' });

/**
 * GET and PUT against one instance or several (autocannon's connections go round-robin over the
 * URLs). GET reads one workspace; PUT gives each connection a workspace of its own, as many
 * independent `tofu apply` runs would: writers racing on one row measure the retry loop instead.
 */
async function getAndPut(
  label: string,
  urls: string[],
  token: string,
  paths: string[],
  pids: readonly number[],
): Promise<[Result, Result]> {
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  // autocannon takes several URLs at run time; its types only know one.
  const many = (path: string) => {
    const targets = urls.map((u) => `${u}${path}`);
    return (targets.length === 1 ? targets[0] : targets) as string;
  };
  const get = await measure(`${label} GET ai-config`, { url: many(paths[0]!), headers: auth }, pids);
  let client = 0;
  const put = await measure(
    `${label} PUT ai-config (new key)`,
    {
      url: many(paths[0]!),
      method: 'PUT',
      headers: auth,
      setupClient: (c) => {
        const path = paths[client++ % paths.length]!;
        c.setRequests([
          {
            method: 'PUT',
            path,
            body: putBody(),
            setupRequest: (req) => ({ ...req, path, body: putBody() }),
          },
        ]);
      },
    },
    pids,
  );
  return [get, put];
}

const results: Result[] = [];
let bare: Result | undefined;
let memo: Result | undefined;
let sqlite: [Result, Result] | undefined;
let postgres: [Result, Result] | undefined;
let postgres2: [Result, Result] | undefined;
let pg: PostgresEngine | undefined;
let vault: VaultPeer | undefined;
/** rigbox GET, rigbox PUT under a BYOK policy, Vault KV v2 read, Vault KV v2 write. */
let peer: [Result, Result, Result, Result] | undefined;
/** Vault KV v2 read and write again, with a file audit device enabled (not the peer). */
let audited: [Result, Result] | undefined;
/** Bare Fastify in the same run as the Vault peer: the most any Fastify route reaches here. */
let peerBare: Result | undefined;

/** The BYOK policy in force for the comparison with Vault: the writes are checked against it. */
const BENCH_POLICY = {
  enforcement: 'enforce',
  allowed_modes: ['byok'],
  allowed_providers: ['openai'],
  allowed_models: { openai: ['gpt-4o'] },
  max_key_age_days: 90,
};

/** Vault KV v2: a read of one secret, and writes of a new value each request, a secret per connection. */
async function vaultReadAndWrite(v: VaultPeer, label = 'vault KV v2'): Promise<[Result, Result]> {
  const pids = v.pid === undefined ? [] : [v.pid];
  const headers = { 'x-vault-token': v.token, 'content-type': 'application/json' };
  let w = 0;
  const body = () => JSON.stringify({ data: { api_key: `sk-proj-vaultbench${++w}x` } });
  for (let i = 0; i < connections; i++) {
    // A KV v2 mount upgrades itself for a moment after it is enabled; its first writes may be refused.
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${v.address}/v1/secret/data/bench/ws-${i}`, {
        method: 'POST',
        headers,
        body: body(),
      });
      if (res.ok) break;
      if (attempt > 50) throw new Error(`vault write: HTTP ${res.status} ${await res.text()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const read = await measure(
    `${label} read`,
    { url: `${v.address}/v1/secret/data/bench/ws-0`, headers },
    pids,
  );
  let client = 0;
  const write = await measure(
    `${label} write (new value)`,
    {
      url: `${v.address}/v1/secret/data/bench/ws-0`,
      method: 'POST',
      headers,
      setupClient: (c) => {
        const path = `/v1/secret/data/bench/ws-${client++ % connections}`;
        c.setRequests([
          { method: 'POST', path, body: body(), setupRequest: (req) => ({ ...req, path, body: body() }) },
        ]);
      },
    },
    pids,
  );
  return [read, write];
}

try {
  // Started first, idle while SQLite is measured: a cluster takes seconds to set up.
  const pgStarting = backends.has('postgres') ? startPostgres() : undefined;
  pgStarting?.catch(() => {});

  if (backends.has('sqlite')) {
    const s = await startServer({ BENCH_BARE: '1' });
    bare = await measure('bare fastify GET', { url: `${s.bareUrl}/config` }, [s.pid]);
    results.push(bare);
    sqlite = await getAndPut('sqlite', [s.url], s.token, await prepare(s.url, s.token, connections), [s.pid]);
    results.push(...sqlite);
    if (s.memoUrl && s.memoToken) {
      const [path] = await prepare(s.memoUrl, s.memoToken, 1);
      memo = await measure(
        'GET, config read from memory',
        { url: `${s.memoUrl}${path}`, headers: { authorization: `Bearer ${s.memoToken}` } },
        [s.pid],
      );
      results.push(memo);
    }
    await stopServers();
  }

  if (pgStarting) {
    pg = await pgStarting;
    const url = await pg.createDatabase('bench');
    // The throwaway cluster runs without fsync (test settings); commits here still wait for the WAL
    // write, as in a default deployment.
    const admin = new Client({ connectionString: url });
    await admin.connect();
    await admin.query('ALTER DATABASE bench SET synchronous_commit = on');
    await admin.end();
    const env = { BENCH_DATABASE_URL: url, BENCH_MASTER_KEY: randomBytes(32).toString('hex') };
    const a = await startServer({ ...env, BENCH_BARE: bare ? '0' : '1' });
    if (!bare && a.bareUrl) {
      bare = await measure('bare fastify GET', { url: `${a.bareUrl}/config` }, [a.pid]);
      results.push(bare);
    }
    const paths = await prepare(a.url, a.token, connections);
    postgres = await getAndPut('postgres', [a.url], a.token, paths, [a.pid]);
    results.push(...postgres);
    const b = await startServer(env);
    postgres2 = await getAndPut('postgres x2', [a.url, b.url], a.token, paths, [a.pid, b.pid]);
    results.push(...postgres2);
    await stopServers();
  }

  if (backends.has('vault')) {
    // Rigbox on the embedded default, with a BYOK policy in force for the account.
    const s = await startServer({ BENCH_BARE: '1' });
    if (s.bareUrl) {
      peerBare = await measure('bare fastify GET (vault run)', { url: `${s.bareUrl}/config` }, [s.pid]);
      results.push(peerBare);
    }
    const paths = await prepare(s.url, s.token, connections);
    const set = await fetch(`${s.url}/api/users/me/byok-policy`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(BENCH_POLICY),
    });
    if (set.status !== 200) throw new Error(`setting the bench BYOK policy: HTTP ${set.status}`);
    const [get, put] = await getAndPut('sqlite+policy', [s.url], s.token, paths, [s.pid]);
    await stopServers();
    vault = await startVaultPeer();
    const [read, write] = await vaultReadAndWrite(vault);
    peer = [get, put, read, write];
    results.push(...peer);
    await vault.stop();
    vault = undefined;
    vault = await startVaultPeer({ fileAudit: true });
    audited = await vaultReadAndWrite(vault, 'vault+file audit');
    results.push(...audited);
  }
} finally {
  await stopServers();
  await pg?.stop();
  await vault?.stop();
}

const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}x`;
console.log(
  `\nbench/api: ${duration}s per target, ${connections} connections, ${cpus().length} CPUs, backends ${[...backends].join(', ')}\n`,
);
console.log('target                              req/s     p50 ms   p99 ms   non-2xx   server CPU µs/req');
for (const r of results) {
  console.log(
    `${r.name.padEnd(34)} ${r.rps.toFixed(0).padStart(7)} ${r.p50.toFixed(1).padStart(9)} ${r.p99.toFixed(1).padStart(8)} ${String(r.non2xx).padStart(9)} ${(r.cpuUs === undefined ? '-' : r.cpuUs.toFixed(0)).padStart(19)}`,
  );
}
console.log('');
const line = (label: string, value: string, note = '') =>
  console.log(`${label.padEnd(46)} = ${value.padStart(6)}   ${note}`.trimEnd());
// The targets are the embedded default's (SQLite); PostgreSQL's figures are shown beside them.
const verdict = (name: string, value: number, target: number) =>
  name === 'sqlite' ? `(target >= ${target.toFixed(2)}x) ${value >= target ? 'met' : 'MISSED'}` : '';
for (const [name, pair] of [
  ['sqlite', sqlite],
  ['postgres', postgres],
] as const) {
  if (!pair || !bare) continue;
  const [g, p] = pair;
  line(`GET / bare fastify (${name})`, ratio(g.rps, bare.rps), verdict(name, g.rps / bare.rps, 0.7));
  line(`PUT with key / GET (${name})`, ratio(p.rps, g.rps), verdict(name, p.rps / g.rps, 0.3));
}
if (memo && bare) {
  line(
    'GET, config read from memory / bare fastify',
    ratio(memo.rps, bare.rps),
    '(diagnostic: the ceiling without a database read)',
  );
}
if (sqlite && postgres) {
  line('PostgreSQL / SQLite, GET', ratio(postgres[0].rps, sqlite[0].rps));
  line('PostgreSQL / SQLite, PUT with key', ratio(postgres[1].rps, sqlite[1].rps));
}
if (postgres && postgres2) {
  line('two instances / one (PostgreSQL), GET', ratio(postgres2[0].rps, postgres[0].rps));
  line('two instances / one (PostgreSQL), PUT with key', ratio(postgres2[1].rps, postgres[1].rps));
  if (cpus().length < 4) {
    console.log(
      `note: ${cpus().length} CPUs for two service processes, PostgreSQL and autocannon; the two-instance figure is bound by the machine, not the service`,
    );
  }
}
if (peer) {
  const [get, put, read, write] = peer;
  const met = (value: number, target: number) =>
    `(target >= ${target.toFixed(2)}x) ${value >= target ? 'met' : 'MISSED'}`;
  line('rigbox GET / Vault KV v2 read', ratio(get.rps, read.rps), met(get.rps / read.rps, 3));
  line('rigbox PUT with policy / Vault KV v2 write', ratio(put.rps, write.rps), met(put.rps / write.rps, 2));
  if (get.cpuUs && put.cpuUs && read.cpuUs && write.cpuUs) {
    line('CPU per request, Vault read / rigbox GET', ratio(read.cpuUs, get.cpuUs), '(diagnostic)');
    line('CPU per request, Vault write / rigbox PUT', ratio(write.cpuUs, put.cpuUs), '(diagnostic)');
  }
  if (peerBare) {
    line(
      'bare fastify GET / Vault KV v2 read',
      ratio(peerBare.rps, read.rps),
      '(diagnostic: any Fastify route, a constant answer)',
    );
  }
  if (audited) {
    const [aRead, aWrite] = audited;
    line('rigbox GET / Vault read, file audit device', ratio(get.rps, aRead.rps), '(diagnostic)');
    line('rigbox PUT / Vault write, file audit device', ratio(put.rps, aWrite.rps), '(diagnostic)');
    if (read.cpuUs && write.cpuUs && aRead.cpuUs && aWrite.cpuUs) {
      line('CPU per request, Vault read: audit / none', ratio(aRead.cpuUs, read.cpuUs), '(diagnostic)');
      line('CPU per request, Vault write: audit / none', ratio(aWrite.cpuUs, write.cpuUs), '(diagnostic)');
    }
  }
}
if (results.some((r) => r.non2xx > 0)) {
  console.log('warning: some requests did not answer 2xx; the figures are not comparable');
  process.exitCode = 1;
}
