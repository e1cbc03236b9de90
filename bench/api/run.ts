/**
 * API benchmark: in one run, autocannon against
 *   (a) a bare Fastify route returning a constant config-shaped JSON (the baseline),
 *   (b) GET /api/workspaces/{id}/ai-config,
 *   (c) PUT /api/workspaces/{id}/ai-config with a key (a new key each request, so each one writes).
 * Prints req/s, p50, p99 and the ratios. Targets: GET >= 0.7x bare; PUT with key >= 0.3x GET.
 * Usage: npm run bench:api [-- --seconds 10 --connections 10]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, connections: { type: 'string' } } });
const duration = Number(values.seconds ?? 10);
const connections = Number(values.connections ?? 10);

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
}

async function measure(name: string, opts: autocannon.Options): Promise<Result> {
  const r = await autocannon({ duration, connections, ...opts });
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx + r.errors,
  };
}

const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'servers.ts')], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const ready = await new Promise<{ bareUrl: string; url: string; token: string; storage: string }>(
  (ok, fail) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) ok(JSON.parse(out.split('\n')[0] as string));
    });
    child.on('exit', (code) => fail(new Error(`bench servers exited with ${code}`)));
  },
);
const { bareUrl, url, token } = ready;
const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const created = await fetch(`${url}/api/workspaces`, {
  method: 'POST',
  headers: auth,
  body: JSON.stringify({ name: 'bench' }),
});
const ws = ((await created.json()) as { id: string }).id;
const configUrl = `${url}/api/workspaces/${ws}/ai-config`;
await fetch(configUrl, {
  method: 'PUT',
  headers: auth,
  body: JSON.stringify({
    mode: 'byok',
    provider: 'openai',
    api_key: 'sk-proj-benchmark0000',
    model: 'gpt-4o',
  }),
});

let n = 0;
const results: Result[] = [];
results.push(await measure('bare fastify GET', { url: `${bareUrl}/config` }));

results.push(await measure('GET ai-config', { url: configUrl, headers: auth }));
results.push(
  await measure('PUT ai-config (new key)', {
    url: configUrl,
    method: 'PUT',
    headers: auth,
    setupClient: (client) => {
      client.setBody(
        JSON.stringify({ mode: 'byok', provider: 'openai', api_key: `sk-proj-bench${n}x`, model: 'gpt-4o' }),
      );
    },
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({
            mode: 'byok',
            provider: 'openai',
            api_key: `sk-proj-bench${++n}x`,
            model: 'gpt-4o',
          }),
        }),
      },
    ],
  }),
);

child.kill('SIGTERM');

const [b, g, p] = results as [Result, Result, Result];
console.log(`\nbench/api: ${duration}s per target, ${connections} connections, storage ${ready.storage}\n`);
console.log('target                      req/s     p50 ms   p99 ms   non-2xx');
for (const r of results) {
  console.log(
    `${r.name.padEnd(26)} ${r.rps.toFixed(0).padStart(7)} ${r.p50.toFixed(1).padStart(9)} ${r.p99.toFixed(1).padStart(8)} ${String(r.non2xx).padStart(9)}`,
  );
}
const getRatio = g.rps / b.rps;
const putRatio = p.rps / g.rps;
console.log(
  `\nGET / bare fastify  = ${getRatio.toFixed(2)}x   (target >= 0.70x) ${getRatio >= 0.7 ? 'met' : 'MISSED'}`,
);
console.log(
  `PUT with key / GET  = ${putRatio.toFixed(2)}x   (target >= 0.30x) ${putRatio >= 0.3 ? 'met' : 'MISSED'}`,
);
if (results.some((r) => r.non2xx > 0)) {
  console.log('warning: some requests did not answer 2xx; the figures are not comparable');
  process.exitCode = 1;
}
