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

/** Request lines the service logged for GET on this path (path without the query). */
const logged = (path: string) =>
  server.output.split('\n').filter((l) => l.includes('"method":"GET"') && l.includes(`"path":"${path}"`))
    .length;

/** The service logs asynchronously: wait for at least `n` new lines, then a moment for any extra. */
async function newLines(path: string, before: number, n: number): Promise<number> {
  for (let i = 0; i < 100 && logged(path) - before < n; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  return logged(path) - before;
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
  const before = logged('/api/workspaces');
  const reads = [...ids, 'ws_not_there'].map((workspaceId) =>
    client.getConfig({ kind: 'workspace', workspaceId }).catch((err: unknown) => err),
  );
  // The same workspace twice in one batch: both callers get it.
  const again = client.getConfig({ kind: 'workspace', workspaceId: ids[3] as string });
  const answers = await Promise.all(reads);
  expect(await newLines('/api/workspaces', before, 1)).toBe(1);

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
  const lone = await newLines(`/api/workspaces/${ids[0]}/ai-config`, 0, 0);
  await client.getConfig({ kind: 'workspace', workspaceId: ids[0] as string });
  expect(await newLines(`/api/workspaces/${ids[0]}/ai-config`, lone, 1)).toBe(1);
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
  const listBefore = logged('/api/workspaces');
  const singleBefore = (id: string) => logged(`/api/workspaces/${id}/ai-config`);
  const bBefore = singleBefore(b as string);

  // As tofu does: upgrade b, c and an unknown one; a read of a goes out and takes them along.
  for (const id of [b, c, gone]) client.expectRead(ws(id as string));
  expect(await client.getConfig(ws(a as string))).toMatchObject({ workspace_id: a, model: 'm-a' });
  expect(await newLines('/api/workspaces', listBefore, 1)).toBe(1);
  // Their reads are answered from that request: no request of their own.
  expect(await client.getConfig(ws(b as string))).toMatchObject({ workspace_id: b, model: 'm-b' });
  const missing = await client.getConfig(ws(gone as string)).catch((err: unknown) => err);
  expect((missing as RigboxApiError).status).toBe(404);
  expect(await newLines('/api/workspaces', listBefore, 1)).toBe(1);
  expect(await newLines(`/api/workspaces/${b}/ai-config`, bBefore, 0)).toBe(0);

  // A read answered ahead answers once: the next read of b is a request again.
  await client.getConfig(ws(b as string));
  expect(await newLines(`/api/workspaces/${b}/ai-config`, bBefore, 1)).toBe(1);

  // A write through the client drops what was read ahead of c: its next read is fresh.
  await client.putConfig(ws(c as string), { mode: 'managed', provider: 'anthropic', model: 'm-c2' });
  expect(await client.getConfig(ws(c as string))).toMatchObject({ provider: 'anthropic', model: 'm-c2' });
});

it('does not answer a read from a read ahead older than a second', async () => {
  const [a, b] = [await createWorkspace('old-a', 'm-a'), await createWorkspace('old-b', 'm-b')];
  const client = new RigboxClient(server.url, token);
  client.expectRead({ kind: 'workspace', workspaceId: b as string });
  await client.getConfig({ kind: 'workspace', workspaceId: a as string });
  // b changes out of band after it was read ahead.
  await fetch(`${server.url}/api/workspaces/${b}/ai-config`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'managed', provider: 'openai', model: 'm-b2' }),
  });
  await new Promise((r) => setTimeout(r, 1_100));
  expect(await client.getConfig({ kind: 'workspace', workspaceId: b as string })).toMatchObject({
    model: 'm-b2',
  });
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
