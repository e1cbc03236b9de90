import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from './support/api.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { REPO, RIGBOX_BIN, RigboxServer } from './support/rigbox-server.js';
import { UpstreamStandIn } from './support/upstream-standin.js';

/**
 * Runtime injection and the AI gateway, end to end: a real `rigbox serve`, the official OpenAI
 * and Anthropic SDKs running unchanged under `rigbox exec`, and a stand-in upstream that speaks
 * the providers' wire formats and records which key reached it.
 */
const keys = {
  openai: canaryKey('sk-proj-'),
  anthropic: canaryKey('sk-ant-api03-'),
  platformOpenai: canaryKey('sk-proj-'),
  platformAnthropic: canaryKey('sk-ant-api03-'),
  platformGoogle: `AIza${'P'.repeat(20)}CANARY${Math.random().toString(36).slice(2, 12)}`,
};

const upstream = new UpstreamStandIn();
let server: RigboxServer;
let token = '';
const outputs: string[] = [];

const api = apiClient(
  () => server.url,
  () => token,
  { record: outputs },
);

const newWorkspace = async (aiConfig: unknown) =>
  (await api('POST', '/api/workspaces', { name: 'agents', ai_config: aiConfig })).body.id as string;
const credits = async () => (await api('GET', '/api/users/me/credits')).body;

/** An agent process under `rigbox exec`, driven one command at a time. */
class Agent {
  private child: ChildProcessWithoutNullStreams;
  private lines: AsyncIterator<string>;
  output = '';

  constructor(workspaceId: string) {
    this.child = spawn(
      process.execPath,
      [
        RIGBOX_BIN,
        'exec',
        '--workspace',
        workspaceId,
        '--',
        process.execPath,
        join(REPO, 'test/fixtures/agent.mjs'),
      ],
      {
        env: { ...process.env, RIGBOX_ENDPOINT: server.url, RIGBOX_TOKEN: token },
        cwd: REPO,
      },
    );
    this.child.stderr.on('data', (b: Buffer) => {
      this.output += b.toString();
    });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  private async next(): Promise<Record<string, unknown>> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`agent ended: ${this.output}`);
    this.output += `${value}\n`;
    return JSON.parse(value);
  }

  async ready() {
    expect(await this.next()).toEqual({ ready: true });
    return this;
  }

  async ask(command: string) {
    this.child.stdin.write(`${command}\n`);
    return this.next();
  }

  async exit() {
    this.child.stdin.write('exit\n');
    const code = await new Promise<number | null>((ok) => this.child.on('exit', (c) => ok(c)));
    outputs.push(this.output);
    return code;
  }
}

beforeAll(async () => {
  await upstream.start();
  server = await new RigboxServer(undefined, {
    RIGBOX_UPSTREAM_OPENAI: upstream.url,
    RIGBOX_UPSTREAM_ANTHROPIC: upstream.url,
    RIGBOX_UPSTREAM_GOOGLE: upstream.url,
    RIGBOX_PLATFORM_KEY_OPENAI: keys.platformOpenai,
    RIGBOX_PLATFORM_KEY_ANTHROPIC: keys.platformAnthropic,
    RIGBOX_PLATFORM_KEY_GOOGLE: keys.platformGoogle,
  }).start();
  token = server.token('agent-owner');
});

afterAll(async () => {
  await server.stop();
  try {
    const logs = [server.output, ...outputs].join('\n');
    for (const [name, key] of Object.entries(keys)) {
      expect(logs, `key ${name} in a log or output`).not.toContain(key);
    }
    const db = folderBytes(server.dataDir);
    for (const key of [keys.openai, keys.anthropic]) expect(db.includes(key)).toBe(false);
  } finally {
    await server.dispose();
    await upstream.stop();
  }
});

describe('runtime injection and the AI gateway', () => {
  it('byok: the official OpenAI SDK reaches upstream with the workspace key and spends no credit', async () => {
    const ws = await newWorkspace({
      mode: 'byok',
      provider: 'openai',
      api_key: keys.openai,
      model: 'gpt-4o',
    });
    const before = await credits();
    const agent = await new Agent(ws).ready();
    const env = await agent.ask('env');
    expect(String(env.text).split(',')).toEqual(
      expect.arrayContaining(['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'RIGBOX_GATEWAY_TOKEN']),
    );
    expect(String(env.text)).not.toContain('RIGBOX_TOKEN,');
    for (const command of ['openai-chat', 'openai-stream', 'openai-responses']) {
      const res = await agent.ask(command);
      expect(res, command).toMatchObject({ ok: true, text: 'Hello from the stand-in' });
      // The SDK sends a content-length; the gateway passes the body on with it, not re-chunked.
      expect(upstream.calls.at(-1)).toMatchObject({
        provider: 'openai',
        key: keys.openai,
        framing: 'content-length',
      });
    }
    expect(upstream.calls.at(-2)?.stream).toBe(true);
    expect((await credits()).used).toBe(before.used);
    expect(await agent.exit()).toBe(0);
  });

  it('a process started in managed follows every mode switch on its next call, with no restart', async () => {
    const ws = await newWorkspace({ mode: 'managed', provider: 'openai' });
    const agent = await new Agent(ws).ready();
    const before = await credits();
    expect(await agent.ask('openai-chat')).toMatchObject({ ok: true });
    expect(upstream.calls.at(-1)?.key).toBe(keys.platformOpenai);
    expect((await credits()).used).toBe(before.used + 1);

    await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'byok',
      provider: 'openai',
      api_key: keys.openai,
    });
    expect(await agent.ask('openai-stream')).toMatchObject({ ok: true, text: 'Hello from the stand-in' });
    expect(upstream.calls.at(-1)).toMatchObject({ key: keys.openai, stream: true });
    expect((await credits()).used).toBe(before.used + 1);

    await api('PUT', `/api/workspaces/${ws}/ai-config`, { mode: 'managed', provider: 'openai' });
    expect(await agent.ask('openai-chat')).toMatchObject({ ok: true });
    expect(upstream.calls.at(-1)?.key).toBe(keys.platformOpenai);
    expect((await credits()).used).toBe(before.used + 2);
    expect(await agent.exit()).toBe(0);
  });

  it('a process started in byok holds the key itself: a switch to managed locks that key out, and a restart picks up the new mode', async () => {
    const ws = await newWorkspace({ mode: 'byok', provider: 'openai', api_key: keys.openai });
    const agent = await new Agent(ws).ready();
    expect(await agent.ask('openai-chat')).toMatchObject({ ok: true });
    expect(upstream.calls.at(-1)?.key).toBe(keys.openai);

    const before = await credits();
    const calls = upstream.calls.length;
    await api('PUT', `/api/workspaces/${ws}/ai-config`, { mode: 'managed', provider: 'openai' });
    // The key it holds is no longer the workspace's: whoever holds it gets nothing, and no credit is spent.
    expect(await agent.ask('openai-chat')).toMatchObject({ ok: false, status: 401 });
    expect(upstream.calls.length).toBe(calls);
    expect((await credits()).used).toBe(before.used);
    expect(await agent.exit()).toBe(0);

    const restarted = await new Agent(ws).ready();
    expect(await restarted.ask('openai-chat')).toMatchObject({ ok: true });
    expect(upstream.calls.at(-1)?.key).toBe(keys.platformOpenai);
    expect(await restarted.exit()).toBe(0);
  });

  it('managed: the Anthropic SDK (plain and streaming) and Google generateContent spend credits', async () => {
    const ws = await newWorkspace({ mode: 'managed', provider: 'anthropic' });
    const before = await credits();
    const agent = await new Agent(ws).ready();
    expect(await agent.ask('anthropic')).toMatchObject({ ok: true, text: 'Hello from the stand-in' });
    expect(upstream.calls.at(-1)).toMatchObject({ provider: 'anthropic', key: keys.platformAnthropic });
    expect(await agent.ask('anthropic-stream')).toMatchObject({ ok: true, text: 'Hello from the stand-in' });
    expect(upstream.calls.at(-1)?.stream).toBe(true);
    expect(await agent.ask('google')).toMatchObject({ ok: true, text: 'Hello from the stand-in' });
    expect(upstream.calls.at(-1)).toMatchObject({ provider: 'google', key: keys.platformGoogle });
    expect((await credits()).used).toBe(before.used + 3);
    expect(await agent.exit()).toBe(0);
  });

  it('an unknown credential is refused before anything reaches upstream', async () => {
    const count = upstream.calls.length;
    const res = await fetch(`${server.url}/gateway/openai/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk-proj-not-a-rigbox-credential-0000',
        'content-type': 'application/json',
      },
      body: '{"model":"gpt-4o","messages":[]}',
    });
    expect(res.status).toBe(401);
    expect(upstream.calls.length).toBe(count);
  });

  it('credits: new users are on Free (250); the plan command moves them to Pro (2,000)', async () => {
    expect(await credits()).toMatchObject({ plan: 'free', limit: 250 });
    const { spawnSync } = await import('node:child_process');
    const res = spawnSync(
      process.execPath,
      [RIGBOX_BIN, 'user', 'plan', '--user', 'agent-owner', '--plan', 'pro'],
      {
        env: { ...process.env, ...server.allEnv },
        encoding: 'utf8',
      },
    );
    expect(res.status, res.stderr).toBe(0);
    const after = await credits();
    expect(after).toMatchObject({ plan: 'pro', limit: 2000 });
    expect(after.balance).toBe(2000 - after.used);
    expect(Date.parse(after.period_end)).toBeGreaterThan(Date.now());
  });
});

describe('rigbox exec', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((ok) => {
      const child = spawn(process.execPath, [RIGBOX_BIN, 'exec', ...args], {
        env: { ...process.env, RIGBOX_ENDPOINT: server.url, RIGBOX_TOKEN: token, ...env },
      });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      child.on('exit', (code, signal) => {
        outputs.push(stderr);
        ok({ code, signal, stderr });
      });
    });

  it("passes the child's exit code through", async () => {
    const ws = await newWorkspace({ mode: 'managed', provider: 'openai' });
    const res = await run(['--workspace', ws, '--', process.execPath, '-e', 'process.exit(7)']);
    expect(res.code).toBe(7);
  });

  it('passes signals on and dies by the same signal', async () => {
    const ws = await newWorkspace({ mode: 'managed', provider: 'openai' });
    const child = spawn(
      process.execPath,
      [
        RIGBOX_BIN,
        'exec',
        '--workspace',
        ws,
        '--',
        process.execPath,
        '-e',
        "process.stdout.write('up\\n'); setInterval(() => {}, 1000)",
      ],
      { env: { ...process.env, RIGBOX_ENDPOINT: server.url, RIGBOX_TOKEN: token } },
    );
    await new Promise<void>((ok) => child.stdout.once('data', () => ok()));
    child.kill('SIGTERM');
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((ok) =>
      child.on('exit', (c, s) => ok([c, s])),
    );
    expect(code).toBeNull();
    expect(signal).toBe('SIGTERM');
  });

  it('reports an unknown workspace, a workspace with no key and a bad token in one line', async () => {
    const unknown = await run(['--workspace', 'ws_missing', '--', 'true']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe('rigbox: error: workspace ws_missing not found');
    const keyless = await newWorkspace({ mode: 'byok', provider: 'openai' });
    const noKey = await run(['--workspace', keyless, '--', 'true']);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/byok mode but has no key/);
    const bad = await run(['--workspace', keyless, '--', 'true'], { RIGBOX_TOKEN: 'rbx_nope' });
    expect(bad.stderr.trim()).toBe('rigbox: error: RIGBOX_TOKEN was refused: invalid or expired token');
  });
});
