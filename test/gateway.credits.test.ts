import { afterEach, beforeEach, expect, it } from 'vitest';
import { currentPeriod } from '../service/src/gateway/credits.js';
import { type Harness, startHarness } from './support/harness.js';
import { UpstreamStandIn } from './support/upstream-standin.js';

let h: Harness;
let upstream: UpstreamStandIn;
let url = '';

beforeEach(async () => {
  upstream = await new UpstreamStandIn().start();
  h = await startHarness({
    env: {
      RIGBOX_MASTER_KEY: 'a'.repeat(64),
      RIGBOX_UPSTREAM_OPENAI: upstream.url,
      RIGBOX_PLATFORM_KEY_OPENAI: 'sk-platform-CANARY-0000000000',
    },
  });
  url = await h.service.app.listen({ port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await h.close();
  await upstream.stop();
});

it('N parallel managed calls with M < N credits left: exactly M succeed, the rest get 402', async () => {
  const token = await h.token('dana');
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const ws = (
    await (
      await fetch(`${url}/api/workspaces`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ name: 'w', ai_config: { mode: 'managed', provider: 'openai' } }),
      })
    ).json()
  ).id;
  const runtime = await (
    await fetch(`${url}/api/workspaces/${ws}/runtime-tokens`, {
      method: 'POST',
      headers: { authorization: auth.authorization },
    })
  ).json();
  const env = (
    await (
      await fetch(`${url}/api/runtime/env`, { headers: { authorization: `Bearer ${runtime.token}` } })
    ).json()
  ).env;
  expect(env.OPENAI_API_KEY).toBe(env.RIGBOX_GATEWAY_TOKEN);
  expect(env.OPENAI_BASE_URL).toBe(`${url}/gateway/openai/w/${ws}/v1`);

  // Leave M = 5 of the Free plan's 250 credits.
  const user = (await h.service.storage.findUserByName('dana'))!;
  const period = currentPeriod().start;
  for (let i = 0; i < 245; i++) expect(await h.service.storage.spendCredit(user.id, period, 250)).toBe(true);

  const N = 20;
  const results = await Promise.all(
    Array.from({ length: N }, () =>
      fetch(`${env.OPENAI_BASE_URL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.OPENAI_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      }).then(async (r) => ({ status: r.status, body: await r.json() })),
    ),
  );
  expect(results.filter((r) => r.status === 200)).toHaveLength(5);
  const refused = results.filter((r) => r.status === 402);
  expect(refused).toHaveLength(15);
  expect(refused[0]!.body).toMatchObject({ code: 'credits_exhausted' });
  expect(refused[0]!.body.message).toMatch(/no managed credits left/);
  expect(upstream.calls).toHaveLength(5);
  expect(await h.service.storage.creditsUsed(user.id, period)).toBe(250);
  const view = await (
    await fetch(`${url}/api/users/me/credits`, { headers: { authorization: auth.authorization } })
  ).json();
  expect(view).toMatchObject({ plan: 'free', limit: 250, used: 250, balance: 0 });
  expect(h.logs.text).not.toContain('sk-platform-CANARY');
});
