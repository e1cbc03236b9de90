import { randomBytes } from 'node:crypto';
import http from 'node:http';

/**
 * A local stand-in for the AI providers' APIs (we cannot reach the real ones): the same paths,
 * auth headers and JSON / server-sent-event shapes as OpenAI (chat completions, responses),
 * Anthropic (messages) and Google (generateContent), so the official SDKs work against it
 * unchanged. It records what it received, keys included, for the tests to check.
 */
export interface UpstreamCall {
  provider: 'openai' | 'anthropic' | 'google';
  path: string;
  key: string | undefined;
  stream: boolean;
  body: Record<string, unknown>;
  /** How the request body was framed: a content-length, or chunked transfer encoding. */
  framing: 'content-length' | 'chunked' | 'none';
}

const sse = (res: http.ServerResponse) => {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  return (event: string | undefined, data: unknown) => {
    res.write(
      `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`,
    );
  };
};

const id = (prefix: string) => `${prefix}${randomBytes(8).toString('hex')}`;

export class UpstreamStandIn {
  readonly calls: UpstreamCall[] = [];
  private server = http.createServer((req, res) => void this.handle(req, res));
  url = '';
  /** Delay between streamed chunks, to make time-to-first-byte measurable. */
  chunkDelayMs = 0;
  /** Time before answering each call, as a real provider spends generating (benchmarks only). */
  answerDelayMs = 0;

  async start(): Promise<this> {
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    const addr = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${addr.port}`;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((ok) => this.server.close(() => ok()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: Record<string, unknown> = {};
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'invalid JSON body', type: 'invalid_request_error' } }));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://standin');
    const path = url.pathname;
    const wait = () => new Promise((r) => setTimeout(r, this.chunkDelayMs));
    const framing = req.headers['transfer-encoding']
      ? 'chunked'
      : req.headers['content-length']
        ? 'content-length'
        : 'none';
    const record = (call: Omit<UpstreamCall, 'framing'>) => this.calls.push({ ...call, framing });
    if (this.answerDelayMs > 0) await new Promise((r) => setTimeout(r, this.answerDelayMs));

    if (req.method === 'POST' && path === '/v1/chat/completions') {
      const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      record({ provider: 'openai', path, key, stream: body.stream === true, body });
      const model = String(body.model ?? 'gpt-4o');
      const created = Math.floor(Date.now() / 1000);
      if (body.stream === true) {
        const send = sse(res);
        const cid = id('chatcmpl-');
        for (const [i, piece] of ['Hello', ' from', ' the stand-in'].entries()) {
          send(undefined, {
            id: cid,
            object: 'chat.completion.chunk',
            created,
            model,
            choices: [
              {
                index: 0,
                delta: i === 0 ? { role: 'assistant', content: piece } : { content: piece },
                finish_reason: null,
              },
            ],
          });
          await wait();
        }
        send(undefined, {
          id: cid,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
        });
        send(undefined, '[DONE]');
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: id('chatcmpl-'),
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: 'Hello from the stand-in', refusal: null },
              finish_reason: 'stop',
              logprobs: null,
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
        }),
      );
      return;
    }
    if (req.method === 'POST' && path === '/v1/responses') {
      const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      record({ provider: 'openai', path, key, stream: false, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: id('resp_'),
          object: 'response',
          created_at: Math.floor(Date.now() / 1000),
          status: 'completed',
          model: String(body.model ?? 'gpt-4o'),
          output: [
            {
              type: 'message',
              id: id('msg_'),
              status: 'completed',
              role: 'assistant',
              content: [{ type: 'output_text', text: 'Hello from the stand-in', annotations: [] }],
            },
          ],
          usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 },
        }),
      );
      return;
    }
    if (req.method === 'POST' && path === '/v1/messages') {
      const key = (req.headers['x-api-key'] as string | undefined) ?? undefined;
      record({ provider: 'anthropic', path, key, stream: body.stream === true, body });
      const model = String(body.model ?? 'claude-sonnet-4-20250514');
      const mid = id('msg_');
      if (body.stream === true) {
        const send = sse(res);
        send('message_start', {
          type: 'message_start',
          message: {
            id: mid,
            type: 'message',
            role: 'assistant',
            content: [],
            model,
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 5, output_tokens: 1 },
          },
        });
        send('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'text', text: '' },
        });
        for (const piece of ['Hello', ' from', ' the stand-in']) {
          send('content_block_delta', {
            type: 'content_block_delta',
            index: 0,
            delta: { type: 'text_delta', text: piece },
          });
          await wait();
        }
        send('content_block_stop', { type: 'content_block_stop', index: 0 });
        send('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: 5 },
        });
        send('message_stop', { type: 'message_stop' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: mid,
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text: 'Hello from the stand-in' }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: 5, output_tokens: 5 },
        }),
      );
      return;
    }
    const google = /^\/v1beta\/models\/([^:]+):(generateContent|streamGenerateContent)$/.exec(path);
    if (req.method === 'POST' && google) {
      const key =
        (req.headers['x-goog-api-key'] as string | undefined) ?? url.searchParams.get('key') ?? undefined;
      const stream = google[2] === 'streamGenerateContent';
      record({ provider: 'google', path, key, stream, body });
      const candidate = (text: string) => ({
        candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }],
      });
      if (stream) {
        const send = sse(res);
        for (const piece of ['Hello', ' from', ' the stand-in']) {
          send(undefined, candidate(piece));
          await wait();
        }
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...candidate('Hello from the stand-in'),
          usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 5, totalTokenCount: 10 },
        }),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}`, type: 'not_found' } }));
  }
}
