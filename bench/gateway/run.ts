/**
 * Gateway benchmark, in one run: requests straight to the stand-in upstream vs through the
 * gateway (byok and managed), non-streaming and streaming chat completions. Prints throughput,
 * p50/p99, added latency and time to first byte, and the ratios.
 * Targets: added p50 <= 1 ms; throughput >= 0.8x direct.
 * The upstream, the service and the load generator run in three processes. Managed runs spend
 * credits; the bench servers reset the budget continuously so every call is served. Usage: npm run bench:gateway [-- --seconds 5 --connections 10]
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, connections: { type: 'string' } } });
const duration = Number(values.seconds ?? 5);
const connections = Number(values.connections ?? 10);

const upstreamProcess = spawn(
  process.execPath,
  ['--import', 'tsx', join(import.meta.dirname, 'upstream.ts')],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const upstreamUrl = await new Promise<string>((ok) =>
  upstreamProcess.stdout.once('data', (b: Buffer) => ok(b.toString().trim())),
);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', join(import.meta.dirname, 'servers.ts'), upstreamUrl],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const ready = await new Promise<{
  upstream: string;
  byok: { base: string; key: string };
  managed: { base: string; key: string };
}>((ok, fail) => {
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.includes('\n')) ok(JSON.parse(out.split('\n')[0] as string));
  });
  child.on('exit', (code) => fail(new Error(`bench servers exited with ${code}`)));
});

const body = (stream: boolean) =>
  JSON.stringify({ model: 'gpt-4o', stream, messages: [{ role: 'user', content: 'Hello' }] });
const targets = {
  direct: { url: `${ready.upstream}/v1/chat/completions`, key: 'sk-proj-bench-0000000000000' },
  byok: { url: `${ready.byok.base}/chat/completions`, key: ready.byok.key },
  managed: { url: `${ready.managed.base}/chat/completions`, key: ready.managed.key },
};

interface Result {
  target: string;
  stream: boolean;
  rps: number;
  p50: number;
  p99: number;
  ttfbP50: number;
  non2xx: number;
}

/** Sequential requests, one at a time: the latency floor and time to first byte, in ms (fractional). */
async function latency(url: string, key: string, stream: boolean, n: number) {
  const totals: number[] = [];
  const firsts: number[] = [];
  const payload = body(stream);
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const t = process.hrtime.bigint();
      const req = request(
        url,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          let first = true;
          res.on('data', () => {
            if (first) {
              firsts.push(Number(process.hrtime.bigint() - t) / 1e6);
              first = false;
            }
          });
          res.on('end', () => {
            totals.push(Number(process.hrtime.bigint() - t) / 1e6);
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
  const pct = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0;
  return { p50: pct(totals, 0.5), p99: pct(totals, 0.99), ttfbP50: pct(firsts, 0.5) };
}

const results: Result[] = [];
for (const stream of [false, true]) {
  for (const [name, t] of Object.entries(targets)) {
    const lat = await latency(t.url, t.key, stream, 300);
    const r = await autocannon({
      url: t.url,
      method: 'POST',
      duration,
      connections,
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: body(stream),
    });
    results.push({
      target: name,
      stream,
      rps: r.requests.average,
      p50: lat.p50,
      p99: lat.p99,
      ttfbP50: lat.ttfbP50,
      non2xx: r.non2xx + r.errors,
    });
  }
}
child.kill('SIGTERM');
upstreamProcess.kill('SIGTERM');

console.log(
  `\nbench/gateway: ${duration}s per throughput run, ${connections} connections; latency from 300 sequential requests\n`,
);
console.log(
  'stream  target    req/s    p50 ms   p99 ms  TTFB p50   added p50   throughput vs direct   non-2xx',
);
for (const r of results) {
  const direct = results.find((d) => d.target === 'direct' && d.stream === r.stream)!;
  const added = r.p50 - direct.p50;
  const ratio = r.rps / direct.rps;
  const verdict =
    r.target === 'direct' ? '' : `${added <= 1 ? 'met' : 'MISSED'} / ${ratio >= 0.8 ? 'met' : 'MISSED'}`;
  console.log(
    `${String(r.stream).padEnd(7)} ${r.target.padEnd(8)} ${r.rps.toFixed(0).padStart(6)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(8)} ${r.ttfbP50.toFixed(2).padStart(9)} ${added.toFixed(2).padStart(10)} ms ${ratio.toFixed(2).padStart(12)}x  ${verdict.padEnd(14)} ${r.non2xx}`,
  );
}
console.log('\ntargets: added p50 <= 1 ms, throughput >= 0.8x direct (verdicts: latency / throughput)');
if (results.some((r) => r.non2xx > 0 && r.target !== 'managed')) process.exitCode = 1;
