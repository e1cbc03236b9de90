import { randomBytes } from 'node:crypto';

/** One answer of the API: status, parsed JSON body (or undefined) and headers. */
export interface ApiReply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test code reads the JSON bodies by field name.
  body: any;
  headers: Headers;
}

/**
 * A small client for the Rigbox API of one instance: `call(method, path, body?, headers?)` with the
 * token as a bearer (a function when the token is made after the client; an `authorization` header
 * in `headers` replaces it). Network failures reject (a crashed or stopped server), HTTP errors
 * resolve. With `record`, every answer's text is pushed there, for a canary scan at the end.
 */
export function apiClient(
  baseUrl: () => string,
  token: string | (() => string),
  opts: { record?: string[] } = {},
) {
  return async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiReply> => {
    const res = await fetch(`${baseUrl()}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${typeof token === 'function' ? token() : token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    opts.record?.push(text);
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
}
export type ApiClient = ReturnType<typeof apiClient>;

/** A fresh 32-byte master key (KEK), as `RIGBOX_MASTER_KEY` takes it. */
export const newMasterKey = () => randomBytes(32).toString('hex');

/**
 * What a workspace process gets from the runtime: a runtime token minted on one instance (`mint`),
 * exchanged for the env on another (`fetchFrom`), the way `rigbox exec` does it.
 */
export async function runtimeEnv(mint: ApiClient, fetchFromBase: string, workspaceId: string) {
  const minted = await mint('POST', `/api/workspaces/${workspaceId}/runtime-tokens`);
  if (minted.status !== 201) {
    throw new Error(`runtime token for ${workspaceId}: ${minted.status} ${JSON.stringify(minted.body)}`);
  }
  const res = await fetch(`${fetchFromBase}/api/runtime/env`, {
    headers: { authorization: `Bearer ${minted.body.token}` },
  });
  const body = (await res.json()) as { env: Record<string, string>; mode: string; message?: string };
  return { status: res.status, body, env: body.env ?? {} };
}

/**
 * One OpenAI chat completion through the gateway at `base` (an instance's origin), for workspace
 * `workspaceId`, presenting `credential` (a gateway token or the workspace's byok key). `marker` goes
 * into the message so the stand-in's record of this call can be found among concurrent ones.
 */
export async function gatewayChat(base: string, workspaceId: string, credential: string, marker: string) {
  const res = await fetch(`${base}/gateway/openai/w/${workspaceId}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: marker }] }),
  });
  const text = await res.text();
  return { status: res.status, mode: res.headers.get('x-rigbox-ai-mode'), text };
}
