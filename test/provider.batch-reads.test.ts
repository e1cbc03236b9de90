/**
 * The provider's API client against a real `rigbox serve`: workspace reads asked for together (as
 * tofu refreshes -parallelism resources at once) go out as one list request by ids, and answer
 * exactly what one GET per workspace answers, 404s included.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RigboxApiError, RigboxClient } from '../provider/src/rigbox-client.js';
import { RigboxServer } from './support/rigbox-server.js';

let server: RigboxServer;
let token: string;
beforeAll(async () => {
  server = await new RigboxServer().start();
  token = server.token('batch');
});
afterAll(() => server.dispose());

/**
 * Request lines the service logged for GET on a route pattern (it logs the pattern, never the raw
 * path), and for the workspace id the request named, if given.
 */
const logged = (route: string, id?: string) =>
  server.output
    .split('\n')
    .filter(
      (l) =>
        l.includes('"method":"GET"') &&
        l.includes(`"route":"${route}"`) &&
        (id === undefined || l.includes(`"id":"${id}"`)),
    ).length;

const LIST = '/api/workspaces';
const SINGLE = '/api/workspaces/:id/ai-config';

/**
 * Lines logged for `route` (and `id`) since there were `before`. The service logs each request
 * once it has answered it, in order, and its logger writes in order: so once a marker request
 * sent now shows in the log, every request answered before it does too.
 */
async function newLines(before: number, route: string, id?: string): Promise<number> {
  const mark = logged('/healthz');
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  for (let i = 0; i < 250 && logged('/healthz') <= mark; i++) await new Promise((r) => setTimeout(r, 20));
  expect(logged('/healthz'), 'the marker request in the service log').toBeGreaterThan(mark);
  return logged(route, id) - before;
}

it('reads many workspaces in one request, each answer equal to its own GET, unknown ones 404', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${server.url}/api/workspaces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: `batch-${i}`,
        ai_config: { mode: 'managed', provider: 'openai', model: `m-${i}` },
      }),
    });
    ids.push(((await res.json()) as { id: string }).id);
  }
  const client = new RigboxClient(server.url, token);
  const before = logged(LIST);
  const reads = [...ids, 'ws_not_there'].map((workspaceId) =>
    client.getConfig({ kind: 'workspace', workspaceId }).catch((err: unknown) => err),
  );
  // The same workspace twice in one batch: both callers get it.
  const again = client.getConfig({ kind: 'workspace', workspaceId: ids[3] as string });
  const answers = await Promise.all(reads);
  expect(await newLines(before, LIST)).toBe(1);

  for (const [i, id] of ids.entries()) {
    const single = await (
      await fetch(`${server.url}/api/workspaces/${id}/ai-config`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json();
    expect(answers[i]).toEqual(single);
    expect(single).toMatchObject({ workspace_id: id, model: `m-${i}` });
  }
  const missing = answers[ids.length];
  expect(missing).toBeInstanceOf(RigboxApiError);
  expect((missing as RigboxApiError).status).toBe(404);
  expect(await again).toEqual(answers[3]);

  // A lone read keeps its own GET.
  const lone = await newLines(0, SINGLE, ids[0]);
  await client.getConfig({ kind: 'workspace', workspaceId: ids[0] as string });
  expect(await newLines(lone, SINGLE, ids[0])).toBe(1);
});

async function createWorkspace(name: string, model: string): Promise<string> {
  const res = await fetch(`${server.url}/api/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, ai_config: { mode: 'managed', provider: 'openai', model } }),
  });
  return ((await res.json()) as { id: string }).id;
}

it('takes workspaces expected to be read next along with a read, and answers their reads from it', async () => {
  const [a, b, c, gone] = [
    await createWorkspace('ahead-a', 'm-a'),
    await createWorkspace('ahead-b', 'm-b'),
    await createWorkspace('ahead-c', 'm-c'),
    'ws_not_there_either',
  ] as string[];
  const client = new RigboxClient(server.url, token);
  const ws = (workspaceId: string) => ({ kind: 'workspace', workspaceId }) as const;
  const listBefore = logged(LIST);
  const bBefore = logged(SINGLE, b);

  // As tofu does: upgrade b, c and an unknown one; a read of a goes out and takes them along.
  for (const id of [b, c, gone]) client.expectRead(ws(id as string));
  expect(await client.getConfig(ws(a as string))).toMatchObject({ workspace_id: a, model: 'm-a' });
  expect(await newLines(listBefore, LIST)).toBe(1);
  // Their reads are answered from that request: no request of their own.
  expect(await client.getConfig(ws(b as string))).toMatchObject({ workspace_id: b, model: 'm-b' });
  const missing = await client.getConfig(ws(gone as string)).catch((err: unknown) => err);
  expect((missing as RigboxApiError).status).toBe(404);
  expect(await newLines(listBefore, LIST)).toBe(1);
  expect(await newLines(bBefore, SINGLE, b)).toBe(0);

  // A read answered ahead answers once: the next read of b is a request again.
  await client.getConfig(ws(b as string));
  expect(await newLines(bBefore, SINGLE, b)).toBe(1);

  // A write through the client drops what was read ahead of c: its next read is fresh.
  await client.putConfig(ws(c as string), { mode: 'managed', provider: 'anthropic', model: 'm-c2' });
  expect(await client.getConfig(ws(c as string))).toMatchObject({ provider: 'anthropic', model: 'm-c2' });
});

it('answers a read from a read ahead younger than a second, and not from an older one', async () => {
  const [a, b, c] = [
    await createWorkspace('old-a', 'm-a'),
    await createWorkspace('old-b', 'm-b'),
    await createWorkspace('old-c', 'm-c'),
  ] as string[];
  // The read-ahead window runs on this clock, moved by hand: no waiting on the real one.
  let now = 50_000;
  const client = new RigboxClient(server.url, token, 30_000, () => now);
  const ws = (workspaceId: string) => ({ kind: 'workspace', workspaceId }) as const;
  client.expectRead(ws(b as string));
  client.expectRead(ws(c as string));
  await client.getConfig(ws(a as string));
  // b and c change out of band after they were read ahead.
  for (const id of [b, c]) {
    await fetch(`${server.url}/api/workspaces/${id}/ai-config`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'managed', provider: 'openai', model: 'm-2' }),
    });
  }
  now += 999;
  expect(await client.getConfig(ws(c as string))).toMatchObject({ model: 'm-c' });
  now += 1;
  expect(await client.getConfig(ws(b as string))).toMatchObject({ model: 'm-2' });
});

it('says a token that cannot travel in a header is the problem, without repeating it', async () => {
  const bad = `${token}\nx-forged: 1`;
  const err = await new RigboxClient(server.url, bad)
    .getConfig({ kind: 'workspace', workspaceId: 'ws_any' })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RigboxApiError);
  expect((err as RigboxApiError).code).toBe('invalid_token');
  expect((err as RigboxApiError).message).toMatch(/RIGBOX_TOKEN/);
  expect((err as RigboxApiError).message).not.toContain(token);
});
