import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kekId } from '../service/src/crypto/keyring.js';
import { type PostgresEngine, startPostgres } from './engines/postgres.js';
import { type ApiClient, apiClient, newMasterKey, runtimeEnv } from './support/api.js';
import { canaryKey } from './support/harness.js';
import { postgresRawStore, type RawStore, sqliteRawStore } from './support/raw-store.js';
import { RigboxServer, rigboxAsync } from './support/rigbox-server.js';

/**
 * `rigbox kek rotate` under load (issue 7): while a mix of requests flows (PUT with keys, GET,
 * workspace creation from the defaults' key, runtime env fetches, defaults changes) through one or
 * two instances, the master key is rotated. Not one request may fail, and afterwards every stored
 * key decrypts to exactly the key whose fingerprint is stored.
 */

const USER = 'kek-ops';
const SEED_WORKSPACES = 120;
const LOOPS = 8;

/** One running instance as the load sees it; `inFlight` lets a rolling restart drain it first. */
interface Target {
  server: RigboxServer;
  api: ApiClient;
  inFlight: number;
}
const target = (server: RigboxServer, token: string): Target => ({
  server,
  api: apiClient(() => server.url, token),
  inFlight: 0,
});

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;

/** Every key the test ever sent, and what the service said about it. */
class Ledger {
  /** fingerprint → key, from every acknowledged write (fingerprints are deterministic per key). */
  readonly keyOf = new Map<string, string>();
  /** Every key sent for a workspace (its own PUTs, and the defaults' keys for one created from them). */
  readonly sent = new Map<string, Set<string>>();
  readonly defaultsKeys = new Set<string>();
  readonly workspaces: string[] = [];
  readonly all: string[] = [];

  key(): string {
    const k = canaryKey('sk-proj-');
    this.all.push(k);
    return k;
  }
  addWorkspace(id: string, keys: Set<string>) {
    this.workspaces.push(id);
    this.sent.set(id, keys);
  }
}

/** Concurrent request loops over the live targets; every unexpected answer or error is a failure. */
class Load {
  readonly failures: string[] = [];
  readonly done: { kind: string; at: number }[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private n = 0;

  constructor(
    private readonly ledger: Ledger,
    private readonly live: () => Target[],
  ) {}

  start(loops: number) {
    this.loops = Array.from({ length: loops }, () => this.loop());
  }

  async stop() {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  count(kind: string, from = 0, to = Number.POSITIVE_INFINITY) {
    return this.done.filter((d) => d.kind === kind && d.at >= from && d.at <= to).length;
  }

  private async loop() {
    while (!this.stopped) {
      const t = pick(this.live());
      t.inFlight++;
      const r = Math.random();
      const kind = r < 0.3 ? 'put' : r < 0.55 ? 'get' : r < 0.8 ? 'env' : r < 0.95 ? 'create' : 'defaults';
      try {
        const problem = await this.op(kind, t.api, t.server.url);
        if (problem) this.failures.push(`${kind} on ${t.server.url}: ${problem}`);
        else this.done.push({ kind, at: Date.now() });
      } catch (err) {
        this.failures.push(
          `${kind} on ${t.server.url}: ${(err as Error).message} ${(err as Error).cause ?? ''}`,
        );
      } finally {
        t.inFlight--;
      }
    }
  }

  /** One request; returns a description of what went wrong, or undefined. */
  private async op(kind: string, api: ApiClient, base: string): Promise<string | undefined> {
    const { ledger } = this;
    if (kind === 'put') {
      const ws = pick(ledger.workspaces);
      const key = ledger.key();
      ledger.sent.get(ws)!.add(key);
      const res = await api('PUT', `/api/workspaces/${ws}/ai-config`, {
        mode: 'byok',
        provider: 'openai',
        api_key: key,
      });
      if (res.status !== 200) return `${res.status} ${JSON.stringify(res.body)}`;
      ledger.keyOf.set(res.body.api_key_fingerprint, key);
    } else if (kind === 'get') {
      const res = await api('GET', `/api/workspaces/${pick(ledger.workspaces)}/ai-config`);
      if (res.status !== 200 || res.body.api_key_set !== true)
        return `${res.status} ${JSON.stringify(res.body)}`;
    } else if (kind === 'env') {
      const ws = pick(ledger.workspaces);
      const { status, body, env } = await runtimeEnv(api, base, ws);
      if (status !== 200) return `${status} ${JSON.stringify(body)}`;
      if (!ledger.sent.get(ws)!.has(env.OPENAI_API_KEY!))
        return `workspace ${ws}: the env holds a key never sent`;
    } else if (kind === 'create') {
      const res = await api('POST', '/api/workspaces', { name: `from-defaults-${++this.n}` });
      if (res.status !== 201 || res.body.ai_config.api_key_set !== true) {
        return `${res.status} ${JSON.stringify(res.body)}`;
      }
      // Its key is a snapshot of one of the defaults' keys.
      ledger.addWorkspace(res.body.id, new Set(ledger.defaultsKeys));
    } else {
      const key = ledger.key();
      ledger.defaultsKeys.add(key);
      const res = await api('PUT', '/api/users/me/ai-defaults', {
        mode: 'byok',
        provider: 'openai',
        api_key: key,
      });
      if (res.status !== 200) return `${res.status} ${JSON.stringify(res.body)}`;
      ledger.keyOf.set(res.body.api_key_fingerprint, key);
    }
    return undefined;
  }
}

/** Defaults with a key, and workspaces with keys (half set directly, half from the defaults). */
async function seed(api: ApiClient, ledger: Ledger) {
  const key = ledger.key();
  ledger.defaultsKeys.add(key);
  const defaults = await api('PUT', '/api/users/me/ai-defaults', {
    mode: 'byok',
    provider: 'openai',
    api_key: key,
  });
  expect(defaults.status).toBe(200);
  ledger.keyOf.set(defaults.body.api_key_fingerprint, key);
  for (let i = 0; i < SEED_WORKSPACES; i += 10) {
    await Promise.all(
      Array.from({ length: 10 }, async (_, j) => {
        const own = (i + j) % 2 === 0;
        const k = own ? ledger.key() : key;
        const res = await api('POST', '/api/workspaces', {
          name: `seed-${i + j}`,
          ...(own ? { ai_config: { mode: 'byok', provider: 'openai', api_key: k } } : {}),
        });
        expect(res.status).toBe(201);
        ledger.keyOf.set(res.body.ai_config.api_key_fingerprint, k);
        ledger.addWorkspace(res.body.id, new Set([k]));
      }),
    );
  }
}

/**
 * After the load: every workspace's key decrypts (runtime env fetch) to exactly the key whose
 * fingerprint is stored, through each instance in turn; and a workspace made from the defaults now
 * gets the defaults' current key.
 */
async function verifyAllKeys(ledger: Ledger, targets: Target[]) {
  let i = 0;
  for (const ws of ledger.workspaces) {
    const t = targets[i++ % targets.length]!;
    const view = (await t.api('GET', `/api/workspaces/${ws}/ai-config`)).body;
    const expected = ledger.keyOf.get(view.api_key_fingerprint);
    expect(expected, `workspace ${ws}: stored fingerprint of a key never acknowledged`).toBeDefined();
    const { status, env } = await runtimeEnv(t.api, t.server.url, ws);
    expect(status, ws).toBe(200);
    expect(env.OPENAI_API_KEY, ws).toBe(expected);
  }
  const defaults = (await targets[0]!.api('GET', '/api/users/me/ai-defaults')).body;
  const created = await targets[0]!.api('POST', '/api/workspaces', { name: 'after-rotation' });
  expect(created.status).toBe(201);
  const { env } = await runtimeEnv(targets[0]!.api, targets[0]!.server.url, created.body.id);
  expect(env.OPENAI_API_KEY).toBe(ledger.keyOf.get(defaults.api_key_fingerprint));
}

/** Runs `rotate` while the load flows (some before, during and after), then checks there were no failures. */
async function rotateUnderLoad(ledger: Ledger, live: () => Target[], rotate: () => Promise<string>) {
  const load = new Load(ledger, live);
  load.start(LOOPS);
  await sleep(300);
  const from = Date.now();
  const report = await rotate();
  const to = Date.now();
  await sleep(300);
  await load.stop();
  expect(load.failures).toEqual([]);
  // The rotation really ran under load: every kind of request completed while it ran.
  for (const kind of ['put', 'get', 'env', 'create']) {
    expect(load.count(kind, from, to), `${kind} requests during the rotation`).toBeGreaterThan(0);
  }
  return { report, ms: to - from, during: load.done.filter((d) => d.at >= from && d.at <= to).length };
}

async function rotateCli(env: NodeJS.ProcessEnv): Promise<string> {
  const res = await rigboxAsync(['kek', 'rotate'], env);
  expect(res.status, res.stderr).toBe(0);
  expect(res.stderr).toMatch(/re-wrapped \d+ data keys under master key [0-9a-f]{16}/);
  return res.stderr;
}

const idOf = (hex: string) => kekId(Buffer.from(hex, 'hex'));
const servers: RigboxServer[] = [];
const scratch: string[] = [];
let pg: PostgresEngine | undefined;

beforeAll(async () => {
  pg = await startPostgres();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  try {
    const logs = servers.map((s) => s.output).join('\n');
    expect(logs).not.toContain('sk-proj-CANARY');
  } finally {
    await Promise.all(servers.map((s) => s.dispose()));
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
    await pg?.stop();
  }
});

function keyFile(...keys: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'rigbox-kek-'));
  scratch.push(dir);
  const file = join(dir, 'master.key');
  writeFileSync(file, `${keys.join('\n')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

async function startServer(env: NodeJS.ProcessEnv, dataDir?: string) {
  const server = new RigboxServer(dataDir, env);
  servers.push(server);
  return server.start();
}

/** Rewrites the key file with `key` alone: the operator retiring the old key after a rotation. */
function retire(file: string, key: string) {
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
}

/** The KEK ids of every stored envelope: after a rotation, only the new primary's. */
async function kekIdsOf(raw: RawStore) {
  try {
    return new Set(await raw.kekIds());
  } finally {
    await raw.close();
  }
}

describe('rigbox kek rotate while requests flow', () => {
  it('SQLite, master key file: zero failed requests; after it the old key can go', {
    timeout: 60_000,
  }, async () => {
    const old = newMasterKey();
    const file = keyFile(old);
    const server = await startServer({ RIGBOX_MASTER_KEY_FILE: file });
    const token = server.token(USER);
    const t = target(server, token);
    const ledger = new Ledger();
    await seed(t.api, ledger);

    const { report, ms, during } = await rotateUnderLoad(
      ledger,
      () => [t],
      () => rotateCli(server.allEnv),
    );
    const keys = readFileSync(file, 'utf8').trim().split('\n');
    expect(keys).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), old]);
    const next = keys[0]!;
    expect(report).toContain(`under master key ${idOf(next)}`);
    console.log(
      `kek rotate (sqlite, key file): ${ms} ms under load, ${during} requests meanwhile; ${report.trim()}`,
    );
    await verifyAllKeys(ledger, [t]);
    // Nothing is left under the old key, not even what the server wrote while the rotation ran.
    expect(await kekIdsOf(sqliteRawStore(server.dataDir))).toEqual(new Set([idOf(next)]));

    // Retire the old key: the server restarts with the new one alone, and every key still decrypts.
    await server.stop();
    retire(file, next);
    const restarted = await startServer({ RIGBOX_MASTER_KEY_FILE: file }, server.dataDir);
    await verifyAllKeys(ledger, [target(restarted, token)]);
  });

  it('PostgreSQL, two instances sharing a master key file: zero failed requests on either; after it the old key can go', {
    timeout: 60_000,
  }, async () => {
    const url = await pg!.createDatabase('kek_file');
    const old = newMasterKey();
    const file = keyFile(old);
    const env = { RIGBOX_DATABASE_URL: url, RIGBOX_MASTER_KEY_FILE: file };
    const [a, b] = await Promise.all([startServer(env), startServer(env)]);
    const token = a.token(USER);
    const targets = [target(a, token), target(b, token)];
    const ledger = new Ledger();
    await seed(targets[0]!.api, ledger);

    const { report, ms, during } = await rotateUnderLoad(
      ledger,
      () => targets,
      () => rotateCli(a.allEnv),
    );
    const keys = readFileSync(file, 'utf8').trim().split('\n');
    expect(keys).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), old]);
    console.log(
      `kek rotate (postgres, 2 instances, key file): ${ms} ms under load, ${during} requests meanwhile; ${report.trim()}`,
    );
    await verifyAllKeys(ledger, targets);
    expect(await kekIdsOf(await postgresRawStore(url))).toEqual(new Set([idOf(keys[0]!)]));

    // Retire the old key: both instances restart with the new one alone; every key still decrypts.
    await Promise.all([a.stop(), b.stop()]);
    retire(file, keys[0]!);
    const restarted = await Promise.all([startServer(env), startServer(env)]);
    await verifyAllKeys(
      ledger,
      restarted.map((s) => target(s, token)),
    );
  });

  it('PostgreSQL, two instances on RIGBOX_MASTER_KEY: rolling restarts to old,new then new,old, rotate, then the new key alone', {
    timeout: 90_000,
  }, async () => {
    const url = await pg!.createDatabase('kek_env');
    const old = newMasterKey();
    const next = newMasterKey();
    const envOf = (keys: string) => ({ RIGBOX_DATABASE_URL: url, RIGBOX_MASTER_KEY: keys });
    const first = await Promise.all([startServer(envOf(old)), startServer(envOf(old))]);
    const token = first[0].token(USER);
    const live: Target[] = first.map((s) => target(s, token));
    const ledger = new Ledger();
    await seed(live[0]!.api, ledger);

    /** Replaces each instance in turn, as a load balancer would: drain, stop, start with `keys`, add back. */
    async function rollingRestart(keys: string) {
      for (let i = 0; i < live.length; i++) {
        const [gone] = live.splice(i, 1);
        while (gone!.inFlight > 0) await sleep(5);
        await gone!.server.stop();
        live.splice(i, 0, target(await startServer(envOf(keys)), token));
      }
    }

    const load = new Load(ledger, () => live);
    load.start(LOOPS);
    // Phase 1: every instance learns the new key (decrypt only); phase 2: it becomes primary. In
    // between, an instance already on new,old seals with the new key while the other still runs:
    // it must be able to open that, hence the two phases.
    await rollingRestart(`${old},${next}`);
    await rollingRestart(`${next},${old}`);
    const from = Date.now();
    const report = await rotateCli(envOf(`${next},${old}`));
    const to = Date.now();
    await sleep(300);
    // Phase 3: the old key is retired; everything was re-wrapped, so nothing needs it any more.
    await rollingRestart(next);
    await sleep(300);
    await load.stop();
    expect(load.failures).toEqual([]);
    for (const kind of ['put', 'get', 'env', 'create']) {
      expect(load.count(kind, from, to), `${kind} requests during the rotation`).toBeGreaterThan(0);
    }
    console.log(
      `kek rotate (postgres, 2 instances, env keys, rolling restarts): ${to - from} ms, ` +
        `${load.done.length} requests in all, 0 failed; ${report.trim()}`,
    );
    expect(await kekIdsOf(await postgresRawStore(url))).toEqual(new Set([idOf(next)]));
    await verifyAllKeys(ledger, live);
  });
});
