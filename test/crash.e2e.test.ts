import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kekId } from '../service/src/crypto/keyring.js';
import { type PostgresEngine, startPostgres } from './engines/postgres.js';
import { type ApiClient, apiClient, gatewayChat, newMasterKey, runtimeEnv } from './support/api.js';
import { canaryKey, folderBytes } from './support/harness.js';
import {
  postgresRawStore,
  type RawStore,
  sqliteRawStore,
  waitForNoRigboxSessions,
} from './support/raw-store.js';
import { RigboxServer } from './support/rigbox-server.js';
import { UpstreamStandIn } from './support/upstream-standin.js';

/**
 * Crash consistency (issue 7): a real `rigbox serve` takes a stream of writes from concurrent
 * writers on several workspaces (each PUT with a fresh canary key) and is killed with SIGKILL at a
 * random moment, 20 times per backend. After each restart, checked against the database itself and
 * through the service:
 * - every acknowledged write is there: the stored revision is at least the last acknowledged one,
 *   and the audit trail, written in the same transaction as the config, holds every revision
 *   1..stored exactly once (no lost, duplicated or half-written transaction);
 * - the stored state is one that was written: an acknowledged write (same fingerprint, model and
 *   key) or one that was in flight when the process died; the key columns are all set, under the KEK;
 * - the stored key decrypts: the runtime env carries exactly that key, and a byok gateway call
 *   delivers it to the upstream stand-in.
 */

const CYCLES = 20;
const WORKSPACES = 5;
const WRITERS_PER_WORKSPACE = 2;
/** The kill comes this many ms after the writers start, uniformly at random. */
const KILL_WINDOW_MS: [number, number] = [100, 500];

interface Write {
  key: string;
  model: string;
}
interface Known extends Write {
  fingerprint: string;
}
interface WorkspaceState {
  id: string;
  /** Every write the service acknowledged with 200, by the revision it answered. */
  acked: Map<number, Known>;
  lastAcked: number;
  /** Writes sent without an answer before the crash: each may or may not have been committed. */
  inFlight: Set<Write>;
}

interface Backend {
  env: NodeJS.ProcessEnv;
  raw(server: RigboxServer): Promise<RawStore>;
  /** Called after the kill, before the restart. */
  afterCrash(): Promise<void>;
}

const upstream = new UpstreamStandIn();
let pg: PostgresEngine | undefined;

beforeAll(async () => {
  [pg] = await Promise.all([startPostgres(), upstream.start()]);
});
afterAll(async () => {
  await pg?.stop();
  await upstream.stop();
});

async function crashCycles(backend: Backend) {
  const masterKey = newMasterKey();
  const server = new RigboxServer(undefined, {
    RIGBOX_MASTER_KEY: masterKey,
    RIGBOX_UPSTREAM_OPENAI: upstream.url,
    ...backend.env,
  });
  const stats = { acked: 0, inFlightAtKill: 0, inFlightCommitted: 0, cycles: 0 };
  const writeFailures: string[] = [];
  try {
    await server.start();
    const api: ApiClient = apiClient(() => server.url, server.token('crash'));
    let serial = 0;
    const newWrite = (): Write => ({ key: canaryKey('sk-proj-'), model: `gpt-4o-${++serial}` });

    const states: WorkspaceState[] = [];
    for (let i = 0; i < WORKSPACES; i++) {
      const w = newWrite();
      const res = await api('POST', '/api/workspaces', {
        name: `crash-${i}`,
        ai_config: { mode: 'byok', provider: 'openai', api_key: w.key, model: w.model },
      });
      expect(res.status).toBe(201);
      const known = { ...w, fingerprint: res.body.ai_config.api_key_fingerprint };
      states.push({ id: res.body.id, acked: new Map([[1, known]]), lastAcked: 1, inFlight: new Set() });
    }

    async function writer(s: WorkspaceState) {
      for (;;) {
        const w = newWrite();
        s.inFlight.add(w);
        let res: Awaited<ReturnType<ApiClient>>;
        try {
          res = await api('PUT', `/api/workspaces/${s.id}/ai-config`, {
            mode: 'byok',
            provider: 'openai',
            api_key: w.key,
            model: w.model,
          });
        } catch {
          return; // the server is gone; w stays in flight
        }
        s.inFlight.delete(w);
        if (res.status !== 200) {
          writeFailures.push(`${res.status} ${JSON.stringify(res.body)}`);
          return;
        }
        stats.acked++;
        s.acked.set(res.body.revision, { ...w, fingerprint: res.body.api_key_fingerprint });
        s.lastAcked = Math.max(s.lastAcked, res.body.revision);
      }
    }

    async function verify(raw: RawStore) {
      for (const s of states) {
        const where = `cycle ${stats.cycles}, workspace ${s.id}`;
        const view = (await api('GET', `/api/workspaces/${s.id}/ai-config`)).body;
        const row = await raw.config(s.id);
        expect(row, where).toBeDefined();
        const R = row!.revision;
        // No half-written row: the API's view is the row, the key columns are set together under
        // the KEK, and the audit trail (same transaction) has every revision exactly once.
        expect(view, where).toMatchObject({
          revision: R,
          mode: 'byok',
          api_key_set: true,
          model: row!.model,
        });
        expect(row!.key_fingerprint, where).toBe(view.api_key_fingerprint);
        expect(row!.key_ciphertext && row!.key_wrapped_dek, where).toBeTruthy();
        expect(row!.key_kek_id, where).toBe(kekId(Buffer.from(masterKey, 'hex')));
        expect(row!.auditRevisions, where).toEqual(Array.from({ length: R }, (_, k) => k + 1));
        // Every acknowledged write is there (or was overtaken by a later one).
        expect(R, where).toBeGreaterThanOrEqual(s.lastAcked);

        const { status, env } = await runtimeEnv(api, server.url, s.id);
        expect(status, where).toBe(200);
        const key = env.OPENAI_API_KEY!;
        const acked = s.acked.get(R);
        let stored: Known;
        if (acked && R === s.lastAcked) {
          expect({ model: row!.model, fingerprint: row!.key_fingerprint, key }, where).toEqual({
            model: acked.model,
            fingerprint: acked.fingerprint,
            key: acked.key,
          });
          stored = acked;
        } else {
          // Newer than anything acknowledged: it must be one of the writes in flight at the kill,
          // each of which can have added at most one revision.
          expect(R, where).toBeLessThanOrEqual(s.lastAcked + s.inFlight.size);
          const match = [...s.inFlight].find((w) => w.key === key);
          expect(match, `${where}: stored key is neither acknowledged nor in flight`).toBeDefined();
          expect(row!.model, where).toBe(match!.model);
          stored = { ...match!, fingerprint: row!.key_fingerprint! };
          stats.inFlightCommitted++;
        }
        // The key decrypts and is the one the gateway hands to the provider.
        const marker = randomUUID();
        const call = await gatewayChat(server.url, s.id, env.RIGBOX_GATEWAY_TOKEN!, marker);
        expect(call.status, `${where}: ${call.text}`).toBe(200);
        const received = upstream.calls.find((c) => JSON.stringify(c.body).includes(marker));
        expect(received?.key, where).toBe(stored.key);

        // The next cycle starts from what is stored; a write lost in flight can never appear later.
        s.acked.set(R, stored);
        s.lastAcked = R;
        s.inFlight.clear();
      }
    }

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      stats.cycles = cycle;
      if (!server.running) await server.start();
      const raw = await backend.raw(server);
      try {
        await verify(raw);
      } finally {
        await raw.close();
      }
      const writers = states.flatMap((s) => Array.from({ length: WRITERS_PER_WORKSPACE }, () => writer(s)));
      const [lo, hi] = KILL_WINDOW_MS;
      await sleep(lo + Math.random() * (hi - lo));
      await server.kill('SIGKILL');
      await Promise.all(writers);
      stats.inFlightAtKill += states.reduce((n, s) => n + s.inFlight.size, 0);
      await backend.afterCrash();
    }
    stats.cycles = CYCLES;
    await server.start();
    const raw = await backend.raw(server);
    try {
      await verify(raw);
      // Keys are stored encrypted only, and no log line of any of the 21 processes holds one.
      expect(await raw.tablesContaining('sk-proj-CANARY')).toEqual([]);
    } finally {
      await raw.close();
    }
    expect(writeFailures).toEqual([]);
    expect(server.output).not.toContain('sk-proj-CANARY');
    // Enough happened for the test to mean something: writes acknowledged and cut off mid-flight.
    expect(stats.acked).toBeGreaterThan(CYCLES * 10);
    expect(stats.inFlightAtKill).toBeGreaterThan(0);
    console.log(
      `crash cycles (${backend.env.RIGBOX_DATABASE_URL ? 'postgres' : 'sqlite'}): ${CYCLES} SIGKILLs, ` +
        `${stats.acked} acknowledged writes, ${stats.inFlightAtKill} in flight at a kill, ` +
        `${stats.inFlightCommitted} of those found committed`,
    );
  } finally {
    await server.stop();
    if (!backend.env.RIGBOX_DATABASE_URL) {
      expect(folderBytes(server.dataDir).includes('sk-proj-CANARY')).toBe(false);
    }
    await server.dispose();
  }
}

describe.concurrent('SIGKILL while writes stream in, 20 cycles: acknowledged writes survive, keys decrypt', () => {
  it('SQLite (the embedded data folder)', { timeout: 90_000 }, async () => {
    await crashCycles({
      env: {},
      raw: async (server) => sqliteRawStore(server.dataDir),
      afterCrash: async () => {},
    });
  });

  it('PostgreSQL', { timeout: 90_000 }, async () => {
    const url = await pg!.createDatabase('crash');
    await crashCycles({
      env: { RIGBOX_DATABASE_URL: url },
      raw: () => postgresRawStore(url),
      afterCrash: () => waitForNoRigboxSessions(url),
    });
  });
});
