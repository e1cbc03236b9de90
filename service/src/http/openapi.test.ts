import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../../test/support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

it('serves the OpenAPI document generated from the zod schemas, pinned', async () => {
  const res = await h.service.app.inject({ url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  const doc = res.json();
  expect(Object.keys(doc.paths).sort()).toEqual([
    '/api/runtime/env',
    '/api/users/me/ai-defaults',
    '/api/users/me/audit/export',
    '/api/users/me/byok-policy',
    '/api/users/me/byok-policy/check',
    '/api/users/me/byok-policy/report',
    '/api/users/me/credits',
    '/api/workspaces',
    '/api/workspaces/{id}',
    '/api/workspaces/{id}/ai-config',
    '/api/workspaces/{id}/audit',
    '/api/workspaces/{id}/runtime-tokens',
  ]);
  // The key is write-only: it is in the request schema and in no response schema.
  const put = doc.paths['/api/workspaces/{id}/ai-config'].put;
  expect(JSON.stringify(put.requestBody)).toContain('api_key');
  expect(JSON.stringify(put.responses['200'])).not.toMatch(/"api_key"/);
  await expect(JSON.stringify(doc, null, 2)).toMatchFileSnapshot('./__snapshots__/openapi.json');
});

it('serves a docs page', async () => {
  const res = await h.service.app.inject({ url: '/docs/' });
  expect(res.statusCode).toBe(200);
  expect(res.body).toContain('swagger');
});
