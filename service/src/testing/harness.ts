import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createUserToken } from '../auth/tokens.js';
import { createLogger } from '../logging/logger.js';
import { createService, type Service } from '../service.js';

/** Every line the service logged, kept so tests can scan them for secrets. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text() {
    return this.lines.join('\n');
  }
}

/** A canary key: random so no test can pass by matching a constant, clearly marked as a test value. */
export function canaryKey(prefix = 'sk-ant-api03-'): string {
  return `${prefix}CANARY${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`;
}

export interface Harness {
  service: Service;
  logs: LogCapture;
  dataDir: string;
  token(user: string): Promise<string>;
  close(): Promise<void>;
}

export async function startHarness(
  opts: { rateLimitPerMinute?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rigbox-test-'));
  const logs = new LogCapture();
  const service = await createService({
    dataDir,
    env: opts.env ?? { RIGBOX_MASTER_KEY: randomBytes(32).toString('hex') },
    logger: createLogger({ level: 'debug', destination: logs }),
    rateLimitPerMinute: opts.rateLimitPerMinute ?? 100_000,
  });
  return {
    service,
    logs,
    dataDir,
    token: async (user) => (await createUserToken(service.storage, user)).token,
    async close() {
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** All bytes of every file in a folder (database, WAL, shared memory), for canary scans. */
export function folderBytes(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(readFileSync(join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
}
