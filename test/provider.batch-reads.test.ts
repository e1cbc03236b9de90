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
