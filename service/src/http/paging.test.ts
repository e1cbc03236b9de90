import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../../test/support/harness.js';
import { ApiError } from '../errors.js';
import { newId } from '../ids.js';
import type { AiConfigRecord, AuditEvent } from '../storage/types.js';
import { decodeCursor, encodeCursor, MAX_CURSOR_LENGTH } from './paging.js';

describe('the cursor codec', () => {
  const key = ['2026-01-02T03:04:05.000Z', 'ws_0123456789abcdef'];

  const refused = (run: () => unknown) => {
    try {
      run();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({ statusCode: 400, code: 'invalid_cursor', field: 'cursor' });
      return;
    }
    throw new Error('the cursor was accepted');
  };

  it('gives back the key it was made from, for the list it was made for', () => {
    const cursor = encodeCursor('workspaces:usr_a', key);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor('workspaces:usr_a', cursor, 2)).toEqual(key);
  });

  it('refuses a cursor with any one character changed, dropped or added', () => {
    const cursor = encodeCursor('workspaces:usr_a', key);
    for (let i = 0; i < cursor.length; i++) {
      const other = cursor[i] === 'A' ? 'B' : 'A';
      refused(() => decodeCursor('workspaces:usr_a', cursor.slice(0, i) + other + cursor.slice(i + 1), 2));
      refused(() => decodeCursor('workspaces:usr_a', cursor.slice(0, i) + cursor.slice(i + 1), 2));
    }
    refused(() => decodeCursor('workspaces:usr_a', `${cursor}A`, 2));
  });

  it("refuses another list's cursor, a key of the wrong shape, and what is no cursor at all", () => {
    refused(() => decodeCursor('workspaces:usr_b', encodeCursor('workspaces:usr_a', key), 2));
    refused(() => decodeCursor('audit:workspace:ws_1', encodeCursor('workspaces:usr_a', key), 1));
    refused(() => decodeCursor('workspaces:usr_a', encodeCursor('workspaces:usr_a', ['only-one']), 2));
    for (const junk of [
      '',
      'abc',
      'a+b/c=',
      '!!!!',
      'A'.repeat(MAX_CURSOR_LENGTH + 1),
      Buffer.from('[]').toString('base64url'),
    ]) {
      refused(() => decodeCursor('workspaces:usr_a', junk, 2));
    }
  });
});

describe('paged lists over the API', () => {
  let h: Harness;
  let alice: string;
  let bob: string;
  let aliceId: string;

  beforeAll(async () => {
    h = await startHarness();
    alice = await h.token('alice');
    bob = await h.token('bob');
    aliceId = (await h.service.storage.findUserByName('alice'))!.id;
  });
  afterAll(() => h.close());

  type Body = {
    workspaces: { id: string; created_at: string }[];
    events: { id: string }[];
    next_cursor: string | null;
    code?: string;
    message?: string;
  };
  type Answer = { status: number; body: Body; link: string | undefined };
  const get = async (url: string, token = alice): Promise<Answer> => {
    const res = await h.service.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, body: res.json(), link: res.headers.link as string | undefined };
  };
  const post = async (name: string, token = alice) => {
    const res = await h.service.app.inject({
      method: 'POST',
      url: '/api/workspaces',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ name }),
    });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string; name: string; created_at: string };
  };
  const remove = async (id: string) => {
    const res = await h.service.app.inject({
      method: 'DELETE',
      url: `/api/workspaces/${id}`,
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(res.statusCode).toBe(204);
  };
  const ids = (body: { workspaces: { id: string }[] }) => body.workspaces.map((w) => w.id);

  const config: AiConfigRecord = {
    mode: 'managed',
    provider: 'anthropic',
    model: null,
    key: null,
    keyFingerprint: null,
    keyUpdatedAt: null,
    revision: 1,
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
  /** `n` of alice's workspaces, created in one transaction, a second apart from `start`. */
  async function bulk(n: number, prefix: string, start = Date.parse('2026-01-01T00:00:00.000Z')) {
    const entries = Array.from({ length: n }, (_, i) => {
      const at = new Date(start + i * 1000).toISOString();
      const workspace = { id: newId('ws'), userId: aliceId, name: `${prefix}-${i}`, createdAt: at };
      const audit: AuditEvent = {
        id: newId('aud'),
        ownerKind: 'workspace',
        ownerId: workspace.id,
        actorUserId: aliceId,
        actorName: 'alice',
        action: 'workspace.created',
        changes: {},
        keyEvent: null,
        revision: 1,
        at,
      };
      return { workspace, config, audit };
    });
    await h.service.storage.createWorkspaces(entries);
    return entries.map((e) => e.workspace.id);
  }

  async function all(url: string, token = alice) {
    const seen: string[] = [];
    for (let next: string | null = url, pages = 0; next !== null; pages++) {
      if (pages > 100) throw new Error('paging did not end');
      const res = await get(next, token);
      expect(res.status).toBe(200);
      seen.push(...ids(res.body));
      next = res.body.next_cursor === null ? null : res.link!.replace(/^<(.*)>; rel="next"$/, '$1');
    }
    return seen;
  }

  it('pages the whole list oldest first, with next_cursor and a Link header until the last page', async () => {
    const made = await bulk(7, 'p');
    const first = await get('/api/workspaces?limit=3');
    expect(first.status).toBe(200);
    expect(ids(first.body)).toEqual(made.slice(0, 3));
    expect(first.body.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(first.link).toBe(`</api/workspaces?limit=3&cursor=${first.body.next_cursor}>; rel="next"`);
    const second = await get(`/api/workspaces?limit=3&cursor=${first.body.next_cursor}`);
    expect(ids(second.body)).toEqual(made.slice(3, 6));
    const last = await get(`/api/workspaces?cursor=${second.body.next_cursor}&limit=3`);
    expect(ids(last.body)).toEqual(made.slice(6));
    expect(last.body.next_cursor).toBeNull();
    expect(last.link).toBeUndefined();
    // The default page holds them all, and bob's list is his own.
    const whole = await get('/api/workspaces');
    expect(ids(whole.body)).toEqual(made);
    expect(whole.body.next_cursor).toBeNull();
    expect((await get('/api/workspaces', bob)).body).toEqual({ workspaces: [], next_cursor: null });
    for (const id of made) await remove(id);
  });

  it('pages a list of ids the same way', async () => {
    const made = await bulk(5, 'ids');
    const list = [made[4], made[0], made[2], made[3], made[1]].join(',');
    expect(await all(`/api/workspaces?ids=${list}&limit=2`)).toEqual(made);
    const one = await get(`/api/workspaces?ids=${list}&limit=2`);
    expect(one.link).toContain(`ids=${encodeURIComponent(list)}`);
    for (const id of made) await remove(id);
  });

  it('refuses a bad limit with a 400 that names it', async () => {
    for (const limit of ['0', '-1', '1001', '1.5', 'abc', '', '1e9']) {
      for (const url of ['/api/workspaces', `/api/workspaces/${(await post('l')).id}/audit`]) {
        const res = await get(`${url}?limit=${limit}`);
        expect(res.status, `${url} limit=${limit}`).toBe(400);
        expect(res.body.code).toBe('invalid_request');
        expect(res.body.message).toContain('limit');
      }
    }
    expect((await get('/api/workspaces?limit=1000')).status).toBe(200);
  });

  it('refuses a bad cursor with a 400 that names it, never a 500', async () => {
    const made = await bulk(3, 'c');
    const mine = (await get('/api/workspaces?limit=1')).body.next_cursor as string;
    const bobs = (await post('b1', bob)).id;
    await post('b2', bob);
    const bobCursor = (await get('/api/workspaces?limit=1', bob)).body.next_cursor as string;
    const auditCursor = (await get(`/api/workspaces/${made[0]}/audit?limit=1`)).body.next_cursor;
    // The audit list of one workspace has one event; make it two so there is a cursor.
    expect(auditCursor).toBeNull();
    const tampered = mine.slice(0, -2) + (mine.endsWith('AA') ? 'BB' : 'AA');
    const cases: [string, string][] = [
      ['/api/workspaces', 'garbage'],
      ['/api/workspaces', tampered],
      ['/api/workspaces', 'a+b='],
      ['/api/workspaces', `${mine}%00`],
      ['/api/workspaces', 'x'.repeat(5000)],
      ['/api/workspaces', bobCursor],
      [`/api/workspaces/${made[0]}/audit`, mine],
      ['/api/workspaces', encodeURIComponent('["2026",null]')],
    ];
    for (const [url, cursor] of cases) {
      const res = await get(`${url}?cursor=${cursor}`);
      expect(res.status, `${url} cursor=${cursor.slice(0, 30)}`).toBe(400);
      expect(res.body.message).toContain('cursor');
      expect(JSON.stringify(res.body)).not.toContain(cursor.slice(0, 40));
    }
    // Bob's own cursor works for bob.
    expect(ids((await get(`/api/workspaces?limit=1&cursor=${bobCursor}`, bob)).body)).not.toContain(bobs);
    for (const id of made) await remove(id);
  });

  it('neither skips nor repeats a workspace while others are created and deleted between pages', async () => {
    const made = await bulk(60, 's', Date.parse('2025-06-01T00:00:00.000Z'));
    const deleted = new Set<string>();
    const created: string[] = [];
    const seen: string[] = [];
    const keys: string[] = [];
    let cursor: string | null = null;
    let step = 0;
    do {
      // The page request and the changes go out at once: which lands first is up to the server.
      const victims = [made[step * 5 + 2], made[59 - step * 3]].filter(
        (id): id is string => id !== undefined && !deleted.has(id),
      );
      for (const id of victims) deleted.add(id);
      const paging = get(`/api/workspaces?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      const creating = Promise.all([post(`new-${step}-a`), post(`new-${step}-b`)]);
      await Promise.all([paging, creating, ...victims.map(remove)]);
      const page = await paging;
      const fresh = await creating;
      created.push(...fresh.map((w) => w.id));
      expect(page.status).toBe(200);
      seen.push(...ids(page.body));
      for (const w of page.body.workspaces) {
        keys.push(`${w.created_at} ${w.id}`);
      }
      cursor = page.body.next_cursor;
      step++;
    } while (cursor !== null && step < 100);
    expect(cursor).toBeNull();
    // No repeats, in list order, and every workspace that lived through the walk was seen once.
    expect(new Set(seen).size).toBe(seen.length);
    const survivors = made.filter((id) => !deleted.has(id));
    expect(seen.filter((id) => made.includes(id) && !deleted.has(id))).toEqual(survivors);
    expect([...keys].sort()).toEqual(keys);
    // Workspaces created during the walk sort after the bulk ones, so every one of them that the
    // walk reached the end after was seen too: all but those created with its last page.
    expect(created.slice(0, -2).every((id) => seen.includes(id))).toBe(true);
    for (const id of [...survivors, ...created]) await remove(id);
  });

  it('pages an audit trail newest first without skips or repeats while events are added', async () => {
    const ws = await post('audited');
    const put = (model: string) =>
      h.service.app.inject({
        method: 'PUT',
        url: `/api/workspaces/${ws.id}/ai-config`,
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ mode: 'managed', provider: 'openai', model }),
      });
    for (let i = 0; i < 12; i++) expect((await put(`gpt-${i}`)).statusCode).toBe(200);
    const before = (await get(`/api/workspaces/${ws.id}/audit`)).body.events.map((e) => e.id);
    expect(before).toHaveLength(13);
    const seen: string[] = [];
    let cursor: string | null = null;
    let i = 0;
    do {
      const paging = get(`/api/workspaces/${ws.id}/audit?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      await Promise.all([paging, put(`gpt-later-${i++}`)]);
      const page = await paging;
      expect(page.status).toBe(200);
      seen.push(...page.body.events.map((e) => e.id));
      cursor = page.body.next_cursor;
    } while (cursor !== null);
    expect(new Set(seen).size).toBe(seen.length);
    // Every event there was before the walk, in order; the new ones, if any, only ahead of them.
    expect(seen.slice(seen.length - before.length)).toEqual(before);
    expect([...seen].sort().reverse()).toEqual(seen);
  });
});
