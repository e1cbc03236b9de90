import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AiConfigs } from './ai-config/service.js';
import { loadAuthFailureLimit, loadTrustProxy } from './auth/failures.js';
import { EnvelopeError, Envelopes } from './crypto/envelope.js';
import { type Keyring, KeyringError, loadKeyring } from './crypto/keyring.js';
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
  // Every setting is read before anything is opened or written: a start refused on a setting
  // leaves no file behind.
  const upstreams = loadUpstreams(env);
  const upstreamTimeouts = loadUpstreamTimeouts(env);
  const authFailuresPerMinute = loadAuthFailureLimit(env);
  const trustProxy = loadTrustProxy(env);
  const keyring = loadKeyring({ env, dataDir: config.dataDir, warn: (m) => config.logger.warn(m) });
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  try {
    const envelopes = new Envelopes(keyring);
    // A generated dev key is written once it is known to work with this database. A new database
    // is about to get secrets sealed under it: the key is written first, so that no database ever
    // holds a secret sealed under a key that was never saved.
    if (keyring.source.generated && (await storage.listEnvelopes()).length === 0) keyring.persist();
    let configs: AiConfigs;
    try {
      configs = await AiConfigs.open(storage, envelopes);
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      throw new KeyringError(
        `the master key (${keyring.source.description}) does not open this database's secrets: start with the key it was created with (RIGBOX_MASTER_KEY or RIGBOX_MASTER_KEY_FILE)`,
      );
    }
    keyring.persist();
    const rate =
      config.rateLimitPerMinute ?? (env.RIGBOX_RATE_LIMIT ? Number(env.RIGBOX_RATE_LIMIT) : undefined);
    const app = await buildApp({
      storage,
      configs,
      logger: config.logger,
      ...(rate !== undefined ? { rateLimitPerMinute: rate } : {}),
      upstreams,
      upstreamTimeouts,
      authFailuresPerMinute,
      trustProxy,
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
