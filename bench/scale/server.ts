/**
 * One service process of bench/scale, on a store that run.ts filled: SQLite in BENCH_DATA_DIR, or
 * the PostgreSQL database in BENCH_DATABASE_URL. A process of its own, so its RSS is the service's
 * alone. Prints one JSON line with its URL and a token of the account's user, then serves until killed.
 */
import { createUserToken } from '../../service/src/auth/tokens.js';
import { createLogger } from '../../service/src/logging/logger.js';
import { createService } from '../../service/src/service.js';

const dataDir = process.env.BENCH_DATA_DIR;
if (!dataDir) throw new Error('BENCH_DATA_DIR is not set');
// The service logs as in production (info, a line per request, redaction and scrubbing on) into a sink.
const logger = createLogger({ level: 'info', destination: { write: () => true } as never });
const service = await createService({
  dataDir,
  databaseUrl: process.env.BENCH_DATABASE_URL || undefined,
  env: { RIGBOX_MASTER_KEY: process.env.BENCH_MASTER_KEY },
  logger,
  rateLimitPerMinute: 100_000_000,
});
const url = await service.app.listen({ port: 0, host: '127.0.0.1' });
const { token } = await createUserToken(service.storage, process.env.BENCH_USER ?? 'bench');
process.stdout.write(`${JSON.stringify({ url, token })}\n`);
process.on('SIGTERM', async () => {
  await service.close();
  process.exit(0);
});
