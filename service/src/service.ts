import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AiConfigs } from './ai-config/service.js';
import { loadAuthFailureLimit } from './auth/failures.js';
import { Envelopes } from './crypto/envelope.js';
import { type Keyring, loadKeyring } from './crypto/keyring.js';
import { loadUpstreams, loadUpstreamTimeouts } from './gateway/upstreams.js';
import { buildApp } from './http/app.js';
import { openStorage } from './storage/open.js';
import type { Storage } from './storage/types.js';

export interface ServiceConfig {
  dataDir: string;
  databaseUrl?: string | undefined;
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  rateLimitPerMinute?: number;
}

export interface Service {
  app: FastifyInstance;
  storage: Storage;
  keyring: Keyring;
  configs: AiConfigs;
  close(): Promise<void>;
}

/** Wires storage, keys and the HTTP app together; used by `rigbox serve` and by the tests. */
export async function createService(config: ServiceConfig): Promise<Service> {
  const env = config.env ?? process.env;
  const keyring = loadKeyring({ env, dataDir: config.dataDir, warn: (m) => config.logger.warn(m) });
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  try {
    const envelopes = new Envelopes(keyring);
    const configs = await AiConfigs.open(storage, envelopes);
    // The key works with this database: only now is a generated dev key written to disk.
    keyring.persist();
    const rate =
      config.rateLimitPerMinute ?? (env.RIGBOX_RATE_LIMIT ? Number(env.RIGBOX_RATE_LIMIT) : undefined);
    const app = await buildApp({
      storage,
      configs,
      logger: config.logger,
      ...(rate !== undefined ? { rateLimitPerMinute: rate } : {}),
      upstreams: loadUpstreams(env),
      upstreamTimeouts: loadUpstreamTimeouts(env),
      authFailuresPerMinute: loadAuthFailureLimit(env),
      publicUrl: env.RIGBOX_PUBLIC_URL?.replace(/\/+$/, ''),
    });
    return {
      app,
      storage,
      keyring,
      configs,
      async close() {
        await app.close();
        await storage.close();
      },
    };
  } catch (err) {
    await storage.close();
    throw err;
  }
}
