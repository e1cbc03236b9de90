import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from './support/api.js';
import { canaryKey, folderBytes } from './support/harness.js';
import { RigboxServer, rigbox } from './support/rigbox-server.js';

/**
 * The runtime path attacked as an attacker would: a real `rigbox serve`, a recording upstream that
 * keeps every request that reaches it, and raw sockets for what fetch would normalise away (dot
 * segments, absolute-form targets, bodies on a GET, CONNECT, duplicated headers).
 */

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** An upstream that records what reaches it; `mode` makes it hang or stall on purpose. */
class RecordingUpstream {
  readonly received: Received[] = [];
  /** Requests whose connection went away before an answer (the gateway aborted them). */
  aborted = 0;
  mode: 'answer' | 'hang' | 'stall' = 'answer';
  url = '';
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      if (this.mode === 'hang') {
        res.on('close', () => {
          if (!res.writableFinished) this.aborted++;
        });
        return;
      }
      if (this.mode === 'stall') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'openai-organization': 'org-platform' });
      res.end(JSON.stringify({ ok: true }));
    });
  });

  async start() {
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this;
  }

  stop() {
    this.server.closeAllConnections();
    return new Promise<void>((ok) => this.server.close(() => ok()));
  }
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `head` (and `body`) on a fresh socket exactly as written and reads one answer. `closed` when
 * the server closed the connection without answering, `timeout` when nothing came in time.
 */
function raw(
  base: string,
  head: string,
  body = '',
  opts: { timeoutMs?: number; localAddress?: string } = {},
): Promise<RawAnswer | 'closed' | 'timeout'> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const socket = net.connect({
      host: hostname,
      port: Number(port),
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, opts.timeoutMs ?? 5000);
    const finish = () => {
      clearTimeout(timer);
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return resolve('closed');
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body: data.slice(end + 4) });
    };
    socket.on('data', (b) => {
      data += b.toString();
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end + 2))?.[1];
      if (length !== undefined && Buffer.byteLength(data.slice(end + 4)) >= Number(length)) {
        socket.destroy();
        finish();
      }
    });
    socket.on('close', finish);
    socket.on('error', () => {});
    socket.write(head + body);
  });
}

const request = (method: string, target: string, headers: Record<string, string>, body = '') =>
  `${method} ${target} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n`;

const upstream = new RecordingUpstream();
let server: RigboxServer;
let token = '';
const platformKey = canaryKey('sk-proj-');
const keys = { one: canaryKey('sk-proj-'), two: canaryKey('sk-proj-') };
const outputs: string[] = [];

/** An API call whose answer is kept for the final canary scan (`record: false` for the runtime env, which holds the key by design). */
const api = (method: string, path: string, body?: unknown, bearer = token, record = true) =>
  apiClient(() => server.url, bearer, record ? { record: outputs } : {})(method, path, body);

/** Mints a runtime token and fetches the env, as `rigbox exec` does at process start. */
async function runtimeEnv(workspaceId: string) {
  const minted = await api('POST', `/api/workspaces/${workspaceId}/runtime-tokens`);
  expect(minted.status).toBe(201);
  const env = await api('GET', '/api/runtime/env', undefined, minted.body.token, false);
  expect(env.status).toBe(200);
  return { runtimeToken: minted.body.token as string, env: env.body.env as Record<string, string> };
}

/** A managed workspace and the gateway token its process got, as `rigbox exec` would start it. */
async function managedProcess(name: string) {
  const ws = (
    await api('POST', '/api/workspaces', { name, ai_config: { mode: 'managed', provider: 'openai' } })
  ).body.id as string;
  return { ws, gatewayToken: (await runtimeEnv(ws)).env.RIGBOX_GATEWAY_TOKEN ?? '' };
}

const chat = (workspaceId: string, credential: string, extra = '') =>
  raw(
    server.url,
    request(
      'POST',
      `/gateway/openai/w/${workspaceId}/v1/chat/completions${extra}`,
      { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
      '{"model":"gpt-4o","messages":[]}',
    ),
    '{"model":"gpt-4o","messages":[]}',
  );

const used = async () => (await api('GET', '/api/users/me/credits')).body.used as number;

beforeAll(async () => {
  await upstream.start();
  server = await new RigboxServer(undefined, {
    // A path-scoped upstream: escaping its base path is what an attacker would be after.
    RIGBOX_UPSTREAM_OPENAI: `${upstream.url}/base`,
    RIGBOX_PLATFORM_KEY_OPENAI: platformKey,
    RIGBOX_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '700',
    RIGBOX_UPSTREAM_IDLE_TIMEOUT_MS: '700',
    RIGBOX_AUTH_FAILURE_LIMIT: '1000',
  }).start();
  token = server.token('mallory-target');
});

afterAll(async () => {
  await server.stop();
  try {
    const logs = [server.output, ...outputs].join('\n');
    for (const [name, key] of Object.entries({ ...keys, platformKey })) {
      expect(logs, `key ${name} in a log or answer`).not.toContain(key);
    }
    const db = folderBytes(server.dataDir);
    for (const key of Object.values(keys)) expect(db.includes(key)).toBe(false);
  } finally {
    await server.dispose();
    await upstream.stop();
  }
});

describe('a rotated, cleared or replaced key stops working at the gateway at once', () => {
  it('rotation locks the old key out on the next call; the new key works once a process gets it', async () => {
    const ws = (
      await api('POST', '/api/workspaces', {
        name: 'rotating',
        ai_config: { mode: 'byok', provider: 'openai', api_key: keys.one },
      })
    ).body.id as string;
    const { env } = await runtimeEnv(ws);
    expect(env.OPENAI_API_KEY).toBe(keys.one);
    const before = upstream.received.length;
    expect(await chat(ws, keys.one)).toMatchObject({ status: 200 });
    expect(upstream.received.at(-1)?.headers.authorization).toBe(`Bearer ${keys.one}`);

    await api('PUT', `/api/workspaces/${ws}/ai-config`, {
      mode: 'byok',
      provider: 'openai',
      api_key: keys.two,
    });
    expect(await chat(ws, keys.one)).toMatchObject({ status: 401 });
    // The old key reached nothing: the upstream saw one call, with the key that was current then.
    expect(upstream.received.length).toBe(before + 1);

    const next = await runtimeEnv(ws);
    expect(next.env.OPENAI_API_KEY).toBe(keys.two);
    expect(await chat(ws, keys.two)).toMatchObject({ status: 200 });
    expect(upstream.received.at(-1)?.headers.authorization).toBe(`Bearer ${keys.two}`);
  });

  it('a cleared key, then a switch to managed: the old key gets 401 and spends no credit; the gateway token keeps working', async () => {
    const ws = (
      await api('POST', '/api/workspaces', {
        name: 'clearing',
        ai_config: { mode: 'byok', provider: 'openai', api_key: keys.one },
      })
    ).body.id as string;
    const { env } = await runtimeEnv(ws);
    expect(await chat(ws, keys.one)).toMatchObject({ status: 200 });

    await api('PUT', `/api/workspaces/${ws}/ai-config`, { mode: 'byok', provider: 'openai', api_key: null });
    expect(await chat(ws, keys.one)).toMatchObject({ status: 401 });

    await api('PUT', `/api/workspaces/${ws}/ai-config`, { mode: 'managed', provider: 'openai' });
    const spent = await used();
    const count = upstream.received.length;
    expect(await chat(ws, keys.one)).toMatchObject({ status: 401 });
    expect(await used()).toBe(spent);
    expect(upstream.received.length).toBe(count);

    // The process's gateway token is how a switch applies without a restart: it still works.
    expect(await chat(ws, env.RIGBOX_GATEWAY_TOKEN ?? '')).toMatchObject({ status: 200 });
    expect(upstream.received.at(-1)?.headers.authorization).toBe(`Bearer ${platformKey}`);
    expect(await used()).toBe(spent + 1);
  });

  it('a runtime token fetches the env once: a replay is a 401 that says so, and mints nothing', async () => {
    const ws = (
      await api('POST', '/api/workspaces', {
        name: 'once',
        ai_config: { mode: 'managed', provider: 'openai' },
      })
    ).body.id as string;
    const { runtimeToken } = await runtimeEnv(ws);
    const again = await api('GET', '/api/runtime/env', undefined, runtimeToken);
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ code: 'runtime_token_used' });
    expect(JSON.stringify(again.body)).not.toContain('RIGBOX_GATEWAY_TOKEN');
  });
});

describe('the caller cannot choose the upstream request target', () => {
  let ws = '';
  let gatewayToken = '';
  beforeAll(async () => {
    ({ ws, gatewayToken } = await managedProcess('paths'));
  });

  it('dot segments, encoded slashes and backslashes, empty segments and absolute-form targets are 400s that reach nothing and spend nothing', async () => {
    const prefix = `/gateway/openai/w/${ws}`;
    const targets = [
      `${prefix}/v1/../../../abcdefhttp://evil.example/steal`,
      `${prefix}/../../../../XXXXXXv1/x`,
      `${prefix}/v1/./chat/completions`,
      `${prefix}/v1/%2e%2e/x`,
      `${prefix}/v1/%2E%2e/x`,
      `${prefix}/v1/.%2e/x`,
      `${prefix}/v1/%2e/x`,
      `${prefix}/v1%2f..%2fx`,
      `${prefix}/v1%2F..%2Fx`,
      `${prefix}/v1%5c..%5cx`,
      `${prefix}/v1\\..\\x`,
      `${prefix}//v1/chat/completions`,
      `${prefix}/v1/%00/x`,
      `${prefix}/v1/%zz/x`,
      `http://evil.example${prefix}/v1/chat/completions`,
      `/gateway/openai/w/../w/${ws}/v1/chat/completions`,
      `${prefix}/v1/..;/x`,
      `${prefix}/v1/.;/x`,
      `${prefix}/v1;x/chat/completions`,
      `${prefix}/v1/%3b/x`,
      `${prefix}/v1/%ef%bc%8e%ef%bc%8e/x`,
      `${prefix}/v1/%ef%bc%8f/x`,
    ];
    const spent = await used();
    const count = upstream.received.length;
    for (const target of targets) {
      const answer = await raw(
        server.url,
        request(
          'POST',
          target,
          { authorization: `Bearer ${gatewayToken}`, 'content-type': 'application/json' },
          '{}',
        ),
        '{}',
      );
      expect(answer, target).not.toBe('timeout');
      if (answer === 'closed' || answer === 'timeout') continue; // refused by the HTTP parser itself
      expect(answer.status, target).toBe(400);
      expect(answer.body, target).not.toContain('evil');
      expect(answer.body, target).not.toContain(gatewayToken);
    }
    expect(upstream.received.length).toBe(count);
    expect(await used()).toBe(spent);
  });

  it('a valid call keeps the base path; an encoded provider name matches as decoded; the query is re-serialised and ?key= never passes', async () => {
    for (const provider of ['openai', 'open%61i']) {
      const answer = await raw(
        server.url,
        request(
          'POST',
          `/gateway/${provider}/w/${ws}/v1/chat/completions?api-version=2&key=${keys.one}&x=a%20b`,
          { authorization: `Bearer ${gatewayToken}`, 'content-type': 'application/json' },
          '{}',
        ),
        '{}',
      );
      expect(answer).toMatchObject({ status: 200 });
      expect(upstream.received.at(-1)?.url).toBe('/base/v1/chat/completions?api-version=2&x=a+b');
    }
    const unknown = await raw(
      server.url,
      request('POST', `/gateway/evil/w/${ws}/v1/x`, { authorization: `Bearer ${gatewayToken}` }, '{}'),
      '{}',
    );
    expect(unknown).toMatchObject({ status: 404 });
  });

  it('CONNECT and methods the providers do not use are refused; duplicated key headers do not authenticate', async () => {
    const count = upstream.received.length;
    const connect = await raw(
      server.url,
      `CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n`,
    );
    expect(connect === 'closed' || (typeof connect === 'object' && connect.status >= 400)).toBe(true);
    const trace = await raw(
      server.url,
      request('TRACE', `/gateway/openai/w/${ws}/v1/models`, { authorization: `Bearer ${gatewayToken}` }),
    );
    expect(trace === 'closed' || (typeof trace === 'object' && trace.status >= 400)).toBe(true);
    const doubled = await raw(
      server.url,
      `GET /gateway/openai/w/${ws}/v1/models HTTP/1.1\r\nHost: g\r\nConnection: close\r\nAuthorization: Bearer nope\r\nAuthorization: Bearer ${gatewayToken}\r\n\r\n`,
    );
    expect(doubled).toMatchObject({ status: 401 });
    const huge = await raw(
      server.url,
      request('GET', `/gateway/openai/w/${ws}/v1/models`, {
        authorization: `Bearer ${gatewayToken}`,
        'x-pad': 'a'.repeat(70_000),
      }),
    );
    expect(huge === 'closed' || (typeof huge === 'object' && huge.status === 431)).toBe(true);
    expect(upstream.received.length).toBe(count);
  });
});

describe('managed mode lends the platform key to inference only, and the caller chooses no headers upstream', () => {
  let ws = '';
  let gatewayToken = '';
  beforeAll(async () => {
    ({ ws, gatewayToken } = await managedProcess('managed'));
  });

  it('files, fine-tuning and admin endpoints are a 403 that reaches nothing and spends nothing', async () => {
    const spent = await used();
    const count = upstream.received.length;
    for (const [method, path] of [
      ['GET', '/v1/files'],
      ['DELETE', '/v1/files/file-OTHERTENANT'],
      ['GET', '/v1/organization/users'],
      ['POST', '/v1/fine_tuning/jobs'],
      ['GET', '/v1/responses/resp_other'],
    ] as const) {
      const answer = await raw(
        server.url,
        request(
          method,
          `/gateway/openai/w/${ws}${path}`,
          { authorization: `Bearer ${gatewayToken}` },
          method === 'POST' ? '{}' : '',
        ),
        method === 'POST' ? '{}' : '',
      );
      expect(answer, `${method} ${path}`).toMatchObject({ status: 403 });
    }
    expect(upstream.received.length).toBe(count);
    expect(await used()).toBe(spent);
  });

  it('only allowlisted headers go upstream; account headers never with the platform key, and never back', async () => {
    const answer = await raw(
      server.url,
      request(
        'POST',
        `/gateway/openai/w/${ws}/v1/chat/completions`,
        {
          authorization: `Bearer ${gatewayToken}`,
          'content-type': 'application/json',
          'x-stainless-lang': 'js',
          'openai-organization': 'org-other',
          'openai-project': 'proj_other',
          'x-original-url': '/admin',
          'x-http-method-override': 'DELETE',
          'x-forwarded-prefix': '/evil',
          via: '1.1 evil',
          cookie: 'session=1',
          Connection: 'close, x-stainless-lang',
        },
        '{}',
      ),
      '{}',
    );
    expect(answer).toMatchObject({ status: 200 });
    if (typeof answer === 'object') expect(answer.headers['openai-organization']).toBeUndefined();
    const sent = upstream.received.at(-1)?.headers ?? {};
    expect(sent['content-type']).toBe('application/json');
    for (const h of [
      'openai-organization',
      'openai-project',
      'x-original-url',
      'x-http-method-override',
      'x-forwarded-prefix',
      'via',
      'cookie',
      'x-stainless-lang',
    ]) {
      expect(sent[h], h).toBeUndefined();
    }
  });

  it('a declared body over 10 MiB is a 413 before auth; a chunked one is cut at 10 MiB and its credit given back', async () => {
    const declared = await raw(
      server.url,
      `POST /gateway/openai/w/${ws}/v1/chat/completions HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${gatewayToken}\r\nContent-Type: application/json\r\nContent-Length: ${11 * 1024 * 1024}\r\n\r\n`,
      '{}',
      { timeoutMs: 3000 },
    );
    expect(declared).toMatchObject({ status: 413 });
    const spent = await used();
    const res = await fetch(`${server.url}/gateway/openai/w/${ws}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gatewayToken}`, 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          const chunk = new Uint8Array(1024 * 1024).fill(32);
          for (let i = 0; i < 11; i++) controller.enqueue(chunk);
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit).catch(() => undefined);
    if (res) expect(res.status).toBe(413);
    await expect.poll(used, { timeout: 3000 }).toBe(spent);
  });
});

describe('bodies, timeouts and disconnects: nothing hangs, credits only for answered calls', () => {
  let ws = '';
  let gatewayToken = '';
  beforeAll(async () => {
    ({ ws, gatewayToken } = await managedProcess('timing'));
  });

  it('a GET or HEAD with a body (declared or chunked) is a 400 at once, before auth or credits', async () => {
    const spent = await used();
    const count = upstream.received.length;
    for (const method of ['GET', 'HEAD']) {
      // The declared body never comes: the answer must not wait for it.
      const declared = await raw(
        server.url,
        `${method} /gateway/openai/w/${ws}/v1/models HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${gatewayToken}\r\nContent-Length: 100\r\n\r\n`,
        '',
        { timeoutMs: 3000 },
      );
      expect(declared).toMatchObject({ status: 400 });
      const chunked = await raw(
        server.url,
        `${method} /gateway/openai/w/${ws}/v1/models HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${gatewayToken}\r\nTransfer-Encoding: chunked\r\n\r\n`,
        '5\r\nhello\r\n',
        { timeoutMs: 3000 },
      );
      expect(chunked).toMatchObject({ status: 400 });
    }
    expect(upstream.received.length).toBe(count);
    expect(await used()).toBe(spent);
  });

  it('an upstream that never answers is cut at the first-byte timeout (504) and the credit is given back', async () => {
    upstream.mode = 'hang';
    try {
      const spent = await used();
      const answer = await chat(ws, gatewayToken);
      expect(answer).toMatchObject({ status: 504 });
      if (typeof answer === 'object')
        expect(JSON.parse(answer.body)).toMatchObject({ code: 'upstream_timeout' });
      expect(await used()).toBe(spent);
    } finally {
      upstream.mode = 'answer';
    }
  });

  it('a stream that stalls is cut at the idle timeout; the call was answered, so its credit stays spent', async () => {
    upstream.mode = 'stall';
    try {
      const spent = await used();
      const answer = await chat(ws, gatewayToken);
      expect(answer).not.toBe('timeout');
      expect(answer).toMatchObject({ status: 200 });
      if (typeof answer === 'object') expect(answer.body).toContain('data: first');
      expect(await used()).toBe(spent + 1);
    } finally {
      upstream.mode = 'answer';
    }
  });

  it('a caller that goes away aborts the upstream call and gets its credit back', async () => {
    upstream.mode = 'hang';
    try {
      const spent = await used();
      const aborted = upstream.aborted;
      const { hostname, port } = new URL(server.url);
      const socket = net.connect({ host: hostname, port: Number(port) });
      socket.on('error', () => {});
      socket.write(
        request(
          'POST',
          `/gateway/openai/w/${ws}/v1/chat/completions`,
          { authorization: `Bearer ${gatewayToken}`, 'content-type': 'application/json' },
          '{}',
        ) + '{}',
      );
      const received = upstream.received.length;
      await expect.poll(() => upstream.received.length, { timeout: 3000 }).toBe(received + 1);
      socket.destroy();
      await expect.poll(() => upstream.aborted, { timeout: 3000 }).toBe(aborted + 1);
      await expect.poll(used, { timeout: 3000 }).toBe(spent);
    } finally {
      upstream.mode = 'answer';
    }
  });

  it('an upstream that is down is a 502 and refunds the credit', async () => {
    const closed = net.createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((ok) => closed.close(() => ok()));
    const down = await new RigboxServer(undefined, {
      RIGBOX_UPSTREAM_OPENAI: `http://127.0.0.1:${port}`,
      RIGBOX_PLATFORM_KEY_OPENAI: platformKey,
    }).start();
    try {
      const owner = down.token('down-owner');
      const call = async (method: string, path: string, body?: unknown, bearer = owner) => {
        const res = await fetch(`${down.url}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${bearer}`,
            ...(body ? { 'content-type': 'application/json' } : {}),
          },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        return res.json();
      };
      const w = (
        await call('POST', '/api/workspaces', {
          name: 'down',
          ai_config: { mode: 'managed', provider: 'openai' },
        })
      ).id;
      const minted = await call('POST', `/api/workspaces/${w}/runtime-tokens`);
      const env = await call('GET', '/api/runtime/env', undefined, minted.token);
      const res = await fetch(`${down.url}/gateway/openai/w/${w}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${env.env.RIGBOX_GATEWAY_TOKEN}`,
          'content-type': 'application/json',
        },
        body: '{}',
      });
      expect(res.status).toBe(502);
      expect((await call('GET', '/api/users/me/credits')).used).toBe(0);
    } finally {
      await down.dispose();
    }
  });
});

describe('login floods, echoes and logs', () => {
  it('an address that keeps failing authentication gets 429 with Retry-After; a valid token from another address still works', async () => {
    const limited = await new RigboxServer(undefined, { RIGBOX_AUTH_FAILURE_LIMIT: '5' }).start();
    try {
      const valid = limited.token('flood-target');
      // The service listens on 127.0.0.1; the whole 127/8 range is loopback, so 127.0.0.2 is another address.
      const get = (bearer: string, localAddress = '127.0.0.1') =>
        raw(limited.url, request('GET', '/api/workspaces', { authorization: `Bearer ${bearer}` }), '', {
          localAddress,
        });
      // First, from a third address: preflights with no credential, and a byok process still presenting
      // its rotated key, are not guesses: they never lock that host out.
      const call = async (method: string, path: string, body?: unknown, bearer = valid) => {
        const res = await fetch(`${limited.url}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${bearer}`,
            ...(body ? { 'content-type': 'application/json' } : {}),
          },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        return res.json();
      };
      const oldKey = canaryKey('sk-proj-');
      const w = (
        await call('POST', '/api/workspaces', {
          name: 'r',
          ai_config: { mode: 'byok', provider: 'openai', api_key: oldKey },
        })
      ).id;
      const minted = await call('POST', `/api/workspaces/${w}/runtime-tokens`);
      await call('GET', '/api/runtime/env', undefined, minted.token);
      await call('PUT', `/api/workspaces/${w}/ai-config`, {
        mode: 'byok',
        provider: 'openai',
        api_key: canaryKey('sk-proj-'),
      });
      const host = '127.0.0.3';
      for (let i = 0; i < 8; i++) {
        const preflight = await raw(
          limited.url,
          request('OPTIONS', `/gateway/openai/w/${w}/v1/chat/completions`, {}),
          '',
          { localAddress: host },
        );
        expect(preflight).toMatchObject({ status: 401 });
        const stale = await raw(
          limited.url,
          request(
            'POST',
            `/gateway/openai/w/${w}/v1/chat/completions`,
            { authorization: `Bearer ${oldKey}`, 'content-type': 'application/json' },
            '{}',
          ),
          '{}',
          { localAddress: host },
        );
        expect(stale).toMatchObject({ status: 401 });
        if (typeof stale === 'object')
          expect(JSON.parse(stale.body)).toMatchObject({ code: 'api_key_not_current' });
      }
      expect(await get(valid, host)).toMatchObject({ status: 200 });

      for (let i = 0; i < 5; i++)
        expect(await get(`rbx_guess${i}${randomBytes(16).toString('hex')}`)).toMatchObject({ status: 401 });
      const blocked = await get(`rbx_guess${randomBytes(16).toString('hex')}`);
      expect(blocked).toMatchObject({ status: 429 });
      if (typeof blocked === 'object') expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      // The gateway counts against the same address.
      expect(
        await raw(
          limited.url,
          request('GET', '/gateway/openai/v1/models', { authorization: 'Bearer sk-guess-123456789' }),
          '',
          {},
        ),
      ).toMatchObject({ status: 429 });
      expect(await get(valid, '127.0.0.2')).toMatchObject({ status: 200 });
    } finally {
      await limited.dispose();
    }
  });

  it('a 404 and gateway errors never repeat the path or query, and the log holds route patterns, not raw paths', async () => {
    const secret = `mistral${randomBytes(16).toString('hex')}`;
    const notFound = await raw(server.url, request('GET', `/nope/${secret}?api_key=${secret}`, {}));
    expect(notFound).toMatchObject({ status: 404 });
    if (typeof notFound === 'object') expect(notFound.body).not.toContain(secret);
    const gateway = await raw(
      server.url,
      request('GET', `/gateway/openai/w/ws_x/v1/${secret}?q=${secret}`, {
        authorization: `Bearer ${secret}`,
      }),
    );
    expect(gateway).toMatchObject({ status: 401 });
    if (typeof gateway === 'object') expect(gateway.body).not.toContain(secret);
    const badPath = await raw(server.url, request('GET', `/gateway/${secret}/x`, {}));
    if (typeof badPath === 'object') expect(badPath.body).not.toContain(secret);
    const api = await raw(
      server.url,
      request('GET', `/api/workspaces/${secret}/ai-config`, { authorization: `Bearer ${token}` }),
    );
    expect(api).toMatchObject({ status: 404 });
    if (typeof api === 'object') expect(api.body).not.toContain(secret);
    await expect
      .poll(() => server.output, { timeout: 2000 })
      .toContain('"route":"/api/workspaces/:id/ai-config"');
    expect(server.output).not.toContain(secret);
  });

  it('a request Node refuses before routing (not HTTP, headers too large) gets the API error shape and headers, and no echo', async () => {
    const secret = `mistral${randomBytes(16).toString('hex')}`;
    const garbled = await raw(server.url, `GET /api/${secret} HTTP/1.1 extra\r\nHost: x\r\n\r\n`);
    const huge = await raw(
      server.url,
      request('GET', '/api/workspaces', { authorization: `Bearer ${secret}`, 'x-pad': 'a'.repeat(70_000) }),
    );
    for (const [answer, status, code] of [
      [garbled, 400, 'bad_request'],
      [huge, 431, 'headers_too_large'],
    ] as const) {
      if (typeof answer !== 'object') throw new Error(`expected an answer, got ${answer}`);
      expect(answer.status).toBe(status);
      expect(JSON.parse(answer.body)).toMatchObject({ statusCode: status, code });
      expect(answer.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
        connection: 'close',
      });
      expect(answer.body).not.toContain(secret);
    }
    expect(server.output).not.toContain(secret);
  });
});

describe('data files', () => {
  it('the database and its WAL files are 0600; a start that fails on a wrong master key leaves no new files behind', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rigbox-modes-'));
    try {
      const sealed = new RigboxServer(dataDir, { RIGBOX_MASTER_KEY: randomBytes(32).toString('hex') });
      await sealed.start();
      const owner = sealed.token('modes');
      await fetch(`${sealed.url}/api/workspaces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'm',
          ai_config: { mode: 'byok', provider: 'openai', api_key: canaryKey('sk-proj-') },
        }),
      });
      for (const file of readdirSync(dataDir).filter((f) => f.startsWith('rigbox.db'))) {
        expect((statSync(join(dataDir, file)).mode & 0o777).toString(8), file).toBe('600');
      }
      await sealed.stop();
      const before = readdirSync(dataDir).sort();
      // Without the master key, the dev-key path would generate one: the start must fail and write none.
      const env = { ...sealed.allEnv, RIGBOX_MASTER_KEY: '' };
      const res = rigbox(['serve', '--port', '0'], env);
      expect(res.status).not.toBe(0);
      expect(res.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(join(dataDir, 'master.key'))).toBe(false);
      expect(readdirSync(dataDir).sort()).toEqual(before);
      expect(res.stderr).toMatch(/master key .* does not open this database/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a start refused on a setting, or on a port in use, leaves no data folder behind', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'rigbox-refused-'));
    const blocker = net.createServer();
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', ok));
    try {
      const dataDir = join(parent, 'data');
      for (const [env, args, message] of [
        [{ RIGBOX_AUTH_FAILURE_LIMIT: '0' }, ['--port', '0'], /RIGBOX_AUTH_FAILURE_LIMIT/],
        [{ RIGBOX_UPSTREAM_IDLE_TIMEOUT_MS: 'abc' }, ['--port', '0'], /RIGBOX_UPSTREAM_IDLE_TIMEOUT_MS/],
        [{}, ['--port', String((blocker.address() as net.AddressInfo).port)], /in use/],
      ] as const) {
        const res = rigbox(['serve', ...args], { RIGBOX_DATA_DIR: dataDir, ...env });
        expect(res.status).not.toBe(0);
        expect(res.stderr).toMatch(message);
        expect(res.stderr).not.toMatch(/unexpected failure|\n\s+at /);
        expect(existsSync(dataDir)).toBe(false);
      }
    } finally {
      blocker.close();
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
