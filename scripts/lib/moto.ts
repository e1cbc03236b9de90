import { request } from 'node:http';
import {
  type EngineProcess,
  type SpawnEngineOptions,
  spawnEngine,
  toolPath,
  waitUntilReady,
} from './engine-process.js';
import { freePort } from './ports.js';

/** A real moto server (AWS SSM and friends) on loopback. */
export interface MotoEngine {
  /** `http://127.0.0.1:<port>`: pass as the AWS SDK client's `endpoint`. */
  readonly endpoint: string;
  readonly region: 'us-east-1';
  /** moto accepts any key; these are the ones its docs use. */
  readonly credentials: { readonly accessKeyId: 'testing'; readonly secretAccessKey: 'testing' };
  /** Forgets every resource (`POST /moto-api/reset`). */
  reset(): Promise<void>;
  /** Everything the server printed so far. */
  output(): string;
  readonly engine: EngineProcess;
  /** Kills the server and waits for it to exit. */
  stop(): Promise<void>;
}

function motoApi(endpoint: string, method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, endpoint), { method }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`moto ${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Starts `.tools/bin/moto_server -H 127.0.0.1 -p <free port>` and waits until it answers. */
export async function startMoto(
  options: Pick<SpawnEngineOptions, 'logFile' | 'detached'> = {},
): Promise<MotoEngine> {
  const binary = toolPath('moto_server');
  let lastError: unknown;
  // Another process can take the chosen port between the probe and moto's bind; try again then.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith('AWS_')) delete env[name];
    const engine = spawnEngine('moto_server', binary, ['-H', '127.0.0.1', '-p', String(port)], env, options);
    try {
      await waitUntilReady(engine, async () => (await motoApi(endpoint, 'GET', '/moto-api/')) === 200);
    } catch (error) {
      lastError = error;
      await engine.stop();
      continue;
    }
    return {
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      async reset() {
        const status = await motoApi(endpoint, 'POST', '/moto-api/reset');
        if (status !== 200) throw new Error(`moto reset answered HTTP ${status}`);
      },
      output: () => engine.output(),
      engine,
      stop: () => engine.stop(),
    };
  }
  throw lastError;
}
