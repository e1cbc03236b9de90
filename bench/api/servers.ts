/**
 * One benchmark server process, so autocannon (in the parent) does not share its event loop: the
 * real service, on SQLite in a temp data folder or on the PostgreSQL database in BENCH_DATABASE_URL,
 * and with BENCH_BARE=1 also a bare Fastify baseline (and the diagnostic below). Instances on one
 * database must share the master key: BENCH_MASTER_KEY (a random one otherwise). Prints one JSON line with the URLs and a
 * token, then serves until killed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { createUserToken } from '../../service/src/auth/tokens.js';
import { createLogger } from '../../service/src/logging/logger.js';
import { createService } from '../../service/src/service.js';

export const CONFIG_VIEW = {
  workspace_id: 'ws_0000000000000000000000000000',
  mode: 'byok',
  provider: 'openai',
  model: 'gpt-4o',
  api_key_set: true,
  api_key_fingerprint: 'hmac-sha256:GyCCefGt2oxHfJFk4ttw7o7de0c9qcVT',
  api_key_updated_at: '2026-11-26T16:48:33.600Z',
  revision: 2,
  updated_at: '2026-11-26T16:48:33.600Z',
};

let bareUrl: string | undefined;
const bare = Fastify({ logger: false });
if (process.env.BENCH_BARE === '1') {
  bare.get('/config', async () => CONFIG_VIEW);
  bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
}

const dataDir = mkdtempSync(join(tmpdir(), 'rigbox-bench-'));
// The service logs as in production (info, a line per request, redaction and scrubbing on) into a sink.
const logger = createLogger({ level: 'info', destination: { write: () => true } as never });
const service = await createService({
  dataDir,
  databaseUrl: process.env.BENCH_DATABASE_URL || undefined,
  env: { RIGBOX_MASTER_KEY: process.env.BENCH_MASTER_KEY || randomBytes(32).toString('hex') },
  logger,
  rateLimitPerMinute: 100_000_000,
});
const url = await service.app.listen({ port: 0, host: '127.0.0.1' });
const { token } = await createUserToken(service.storage, 'bench');

/**
 * With BENCH_BARE=1 also a diagnostic: a second service whose one database read per GET (workspace
 * and config) is answered from memory after the first time. Everything else a request does is the
 * real service's (auth, rate limit, headers, serializer, log line), so GET on it against bare
 * Fastify is the most this stack can reach with any storage behind it.
 */
let memoUrl: string | undefined;
let memoToken: string | undefined;
const memoDir =
  process.env.BENCH_BARE === '1' ? mkdtempSync(join(tmpdir(), 'rigbox-bench-memo-')) : undefined;
const memo =
  memoDir !== undefined
    ? await createService({
        dataDir: memoDir,
        env: { RIGBOX_MASTER_KEY: randomBytes(32).toString('hex') },
        logger,
        rateLimitPerMinute: 100_000_000,
      })
    : undefined;
if (memo) {
  const read = memo.storage.getWorkspaceAiConfig.bind(memo.storage);
  const remembered = new Map<string, Awaited<ReturnType<typeof read>>>();
  memo.storage.getWorkspaceAiConfig = async (userId, workspaceId) => {
    const key = `${userId}/${workspaceId}`;
    if (!remembered.has(key)) remembered.set(key, await read(userId, workspaceId));
    return remembered.get(key);
  };
  memoUrl = await memo.app.listen({ port: 0, host: '127.0.0.1' });
  memoToken = (await createUserToken(memo.storage, 'bench')).token;
}

process.stdout.write(
  `${JSON.stringify({ bareUrl, url, token, memoUrl, memoToken, storage: service.storage.kind })}\n`,
);
process.on('SIGTERM', async () => {
  await bare.close();
  await service.close();
  await memo?.close();
  rmSync(dataDir, { recursive: true, force: true });
  if (memoDir) rmSync(memoDir, { recursive: true, force: true });
  process.exit(0);
});
