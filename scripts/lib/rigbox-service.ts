import { join, resolve } from 'node:path';
import {
  type EngineProcess,
  type SpawnEngineOptions,
  spawnEngine,
  waitUntilReady,
} from './engine-process.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const RIGBOX_BIN = join(REPO, 'service/bin/rigbox.js');

/** A port that another process holds; the caller names it in one line. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} on 127.0.0.1 is in use`);
  }
}

export interface RigboxServiceOptions extends Pick<SpawnEngineOptions, 'logFile' | 'detached'> {
  /** The embedded SQLite database and the development master key go here. */
  readonly dataDir: string;
  /** @default 0 (a free port the OS picks) */
  readonly port?: number;
  /** The service's whole environment. @default this process's environment */
  readonly env?: NodeJS.ProcessEnv;
}

export interface RigboxService {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly engine: EngineProcess;
}

/** Runs `rigbox serve` on loopback and resolves once it announces where it listens. */
export async function startRigboxService(options: RigboxServiceOptions): Promise<RigboxService> {
  const port = options.port ?? 0;
  const args = [RIGBOX_BIN, 'serve', '--host', '127.0.0.1', '--port', String(port)];
  args.push('--data-dir', options.dataDir);
  const { logFile, detached } = options;
  const engine = spawnEngine('rigbox serve', process.execPath, args, options.env ?? process.env, {
    ...(logFile === undefined ? {} : { logFile }),
    ...(detached === undefined ? {} : { detached }),
  });
  let url = '';
  try {
    await waitUntilReady(engine, async () => {
      const m = /serving the AI config API on (http:\/\/\S+)/.exec(engine.output());
      if (m?.[1]) url = m[1];
      return url !== '';
    });
  } catch (error) {
    if (port !== 0 && /EADDRINUSE/.test(engine.output())) throw new PortInUseError(port);
    throw error;
  }
  return { url, engine };
}
