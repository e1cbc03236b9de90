/**
 * The gateway benchmark's servers, in their own process so the load generator does not share
 * their event loop: the stand-in upstream and the real service (SQLite) in front of it, with a
 * byok and a managed workspace. Prints one JSON line with URLs and credentials, then serves.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUserToken } from '../../service/src/auth/tokens.js';
import { createLogger } from '../../service/src/logging/logger.js';
import { createService } from '../../service/src/service.js';
import type { SqliteStorage } from '../../service/src/storage/sqlite.js';

const upstream = { url: process.argv[2] as string };
const dataDir = mkdtempSync(join(tmpdir(), 'rigbox-bench-gw-'));
const service = await createService({
  dataDir,
  env: {
    RIGBOX_MASTER_KEY: randomBytes(32).toString('hex'),
    RIGBOX_UPSTREAM_OPENAI: upstream.url,
    RIGBOX_PLATFORM_KEY_OPENAI: 'sk-platform-bench-000000000000',
  },
  logger: createLogger({ level: 'info', destination: { write: () => true } as never }),
  rateLimitPerMinute: 100_000_000,
});
const url = await service.app.listen({ port: 0, host: '127.0.0.1' });
const { token, user } = await createUserToken(service.storage, 'bench');
await service.storage.setUserPlan(user.id, 'pro');
// Benchmark only: give the managed runs a fresh credit budget every 50 ms, so throughput is
// measured on served calls rather than on 402s once the period's credits are spent.
const db = (service.storage as unknown as { db: { prepare(sql: string): { run(): void } } }).db;
const resetCredits = db.prepare('UPDATE credit_usage SET used = 0');
setInterval(() => resetCredits.run(), 50).unref();
void (null as unknown as SqliteStorage);
const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

async function processEnv(aiConfig: unknown): Promise<Record<string, string>> {
  const ws = await (
    await fetch(`${url}/api/workspaces`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'b', ai_config: aiConfig }),
    })
  ).json();
  const rt = await (
    await fetch(`${url}/api/workspaces/${ws.id}/runtime-tokens`, {
      method: 'POST',
      headers: { authorization: auth.authorization },
    })
  ).json();
  return (
    await (await fetch(`${url}/api/runtime/env`, { headers: { authorization: `Bearer ${rt.token}` } })).json()
  ).env;
}
const byok = await processEnv({ mode: 'byok', provider: 'openai', api_key: 'sk-proj-bench-0000000000000' });
const managed = await processEnv({ mode: 'managed', provider: 'openai' });
process.stdout.write(
  `${JSON.stringify({
    upstream: upstream.url,
    byok: { base: byok.OPENAI_BASE_URL, key: byok.OPENAI_API_KEY },
    managed: { base: managed.OPENAI_BASE_URL, key: managed.OPENAI_API_KEY, userId: user.id },
  })}\n`,
);
process.on('SIGTERM', async () => {
  await service.close();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
});
