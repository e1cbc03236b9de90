/**
 * LiteLLM's proxy as the gateway benchmark's peer: the tool a team would otherwise put between
 * its processes and the providers. One worker, no database, its one model pointed at the same
 * stand-in upstream as the gateway. Installed by `bash scripts/tools.sh litellm` (pinned in
 * scripts/versions.env); the benchmark says so and leaves the peer out when it is missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const LITELLM_BIN = resolve(import.meta.dirname, '../../.tools/bin/litellm');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

export interface LiteLlm {
  url: string;
  /** The key callers present (LiteLLM's master key). */
  key: string;
  stop(): void;
}

export async function startLiteLlm(upstreamUrl: string, upstreamKey: string): Promise<LiteLlm | undefined> {
  if (!existsSync(LITELLM_BIN)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'rigbox-bench-litellm-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'model_list:',
      '  - model_name: gpt-4o',
      '    litellm_params:',
      '      model: openai/gpt-4o',
      `      api_base: ${upstreamUrl}/v1`,
      `      api_key: ${upstreamKey}`,
      'litellm_settings:',
      '  drop_params: true',
      '  telemetry: false',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  // No database: LiteLLM then runs as a plain proxy (no virtual keys, no spend tracking). Callers
  // authenticate with its master key, as processes authenticate to the gateway.
  const masterKey = `sk-bench-litellm-${randomBytes(16).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LITELLM_LOG: 'ERROR',
    LITELLM_TELEMETRY: 'False',
    LITELLM_MASTER_KEY: masterKey,
  };
  delete env.DATABASE_URL;
  const child: ChildProcess = spawn(
    LITELLM_BIN,
    ['--config', config, '--host', '127.0.0.1', '--port', String(port), '--num_workers', '1'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    },
  );
  let errors = '';
  child.stderr?.on('data', (b: Buffer) => {
    errors = (errors + b.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`litellm exited with ${child.exitCode}:\n${errors}`);
    try {
      const res = await fetch(`${url}/health/liveliness`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`litellm did not start in 120 s:\n${errors}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    url,
    key: masterKey,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
