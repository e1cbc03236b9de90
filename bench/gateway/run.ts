/**
 * Gateway benchmark, in one run: requests straight to the stand-in upstream vs through the
 * gateway (byok and managed), non-streaming and streaming chat completions. Prints throughput,
 * p50/p99, added latency and time to first byte, and the ratios.
 * Targets: added p50 <= 1 ms; throughput >= 0.8x direct.
 * Then the throughput runs again against an upstream that waits before answering, as real
 * providers do, with many calls in flight: does the gateway become the bottleneck?
 * The upstream, the bare proxy, the service and the load generator run in processes of their own.
 * Managed runs spend credits; the bench servers reset the budget continuously so every call is
 * served. Usage:
 * The peer: LiteLLM's proxy (one worker, no database) in front of the same stand-in, against
 * direct and the byok gateway, at 50 connections and at 1. Targets: the gateway's throughput at
 * least 20x LiteLLM's, and its mean round trip at 1 connection at most 1 ms over direct.
 *   npm run bench:gateway [-- --seconds 5 --connections 10 --upstream-ms 20 --busy-connections 200 --peer-only]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { LITELLM_BIN, startLiteLlm } from './litellm.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    connections: { type: 'string' },
    'upstream-ms': { type: 'string' },
    'busy-connections': { type: 'string' },
    'peer-only': { type: 'boolean' },
  },
});
const duration = Number(values.seconds ?? 5);
const connections = Number(values.connections ?? 10);
const upstreamMs = Number(values['upstream-ms'] ?? 20);
const busyConnections = Number(values['busy-connections'] ?? 200);

interface Targets {
  direct: { url: string; key: string };
  'bare proxy': { url: string; key: string };
  byok: { url: string; key: string };
  managed: { url: string; key: string };
}

/** Prints its URL line first: the process's first stdout line, parsed. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((ok, fail) => {
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) ok(out.split('\n')[0] as string);
    });
    child.on('exit', (code) => fail(new Error(`a bench process exited with ${code}`)));
  });
}

/**
 * The stand-in upstream (answering after `answerMs`), the bare proxy and the gateway in front of
 * it, each in its own process.
 */
async function startSet(
  answerMs: number,
): Promise<{ targets: Targets; upstreamUrl: string; upstreamKey: string; stop: () => void }> {
  const run = (file: string, arg: string) =>
    spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, file), arg], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  const upstreamProcess = run('upstream.ts', String(answerMs));
  const upstreamUrl = (await firstLine(upstreamProcess)).trim();
  const proxyProcess = run('bare-proxy.ts', upstreamUrl);
  const gatewayProcess = run('servers.ts', upstreamUrl);
  const proxyUrl = (await firstLine(proxyProcess)).trim();
  const ready = JSON.parse(await firstLine(gatewayProcess)) as {
    byok: { base: string; key: string };
    managed: { base: string; key: string };
  };
  const upstreamKey = 'sk-proj-bench-0000000000000';
  return {
    upstreamUrl,
    upstreamKey,
    targets: {
      direct: { url: `${upstreamUrl}/v1/chat/completions`, key: upstreamKey },
      'bare proxy': { url: `${proxyUrl}/v1/chat/completions`, key: upstreamKey },
      byok: { url: `${ready.byok.base}/chat/completions`, key: ready.byok.key },
      managed: { url: `${ready.managed.base}/chat/completions`, key: ready.managed.key },
    },
    stop: () => {
      for (const p of [gatewayProcess, proxyProcess, upstreamProcess]) {
        p.removeAllListeners('exit');
        p.kill('SIGTERM');
      }
    },
  };
}

const body = (stream: boolean) =>
  JSON.stringify({ model: 'gpt-4o', stream, messages: [{ role: 'user', content: 'Hello' }] });
interface Result {
  target: string;
  stream: boolean;
  rps: number;
  p50: number;
  p99: number;
  ttfbP50: number;
  non2xx: number;
}

/** One request; its total time and time to first byte, in ms (fractional). */
function timeOne(url: string, key: string, payload: string): Promise<{ total: number; first: number }> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    let first = 0;
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
        res.on('data', () => {
          if (!first) first = Number(process.hrtime.bigint() - t) / 1e6;
        });
        res.on('end', () => resolve({ total: Number(process.hrtime.bigint() - t) / 1e6, first }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Sequential requests, one at a time: the latency floor and time to first byte. The targets take
 * turns request by request, so whatever the machine does meanwhile falls on all of them alike
 * (measured one after another, whichever came first after a throughput run looked slower), in a
 * new random order each round: in a fixed order, the target called right after another process
 * had the turn paid that process's wake-up (byok after the bare proxy looked ~0.2 ms slower than
 * managed after byok; swapping them swapped the gap).
 * A warm-up round first: the figures are for a running gateway, not its first unoptimised calls.
 */
async function latencies(targets: Targets, stream: boolean, rounds: number) {
  const payload = body(stream);
  const samples = new Map(
    Object.keys(targets).map((name) => [name, { totals: [] as number[], firsts: [] as number[] }]),
  );
  const order = Object.entries(targets);
  for (let i = 0; i < rounds * 2; i++) {
    // Fisher-Yates: a fresh order of the targets for this round.
    for (let j = order.length - 1; j > 0; j--) {
      const k = Math.floor(Math.random() * (j + 1));
      [order[j], order[k]] = [order[k]!, order[j]!];
    }
    for (const [name, t] of order) {
      const { total, first } = await timeOne(t.url, t.key, payload);
      if (i < rounds) continue;
      samples.get(name)?.totals.push(total);
      samples.get(name)?.firsts.push(first);
    }
  }
  const pct = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0;
  return new Map(
    [...samples].map(([name, s]) => [
      name,
      { p50: pct(s.totals, 0.5), p99: pct(s.totals, 0.99), ttfbP50: pct(s.firsts, 0.5) },
    ]),
  );
}

async function throughput(
  t: { url: string; key: string },
  stream: boolean,
  conns: number,
  seconds = duration,
) {
  const r = await autocannon({
    url: t.url,
    method: 'POST',
    duration: seconds,
    connections: conns,
    headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
    body: body(stream),
  });
  return { rps: r.requests.average, non2xx: r.non2xx + r.errors };
}

const results: Result[] = [];
const busyResults: { target: string; stream: boolean; rps: number; non2xx: number }[] = [];
const peerResults: { target: string; connections: number; rps: number; mean: number; non2xx: number }[] = [];
let peerMissing = false;
const idle = await startSet(0);
try {
  if (!values['peer-only']) {
    for (const stream of [false, true]) {
      const lats = await latencies(idle.targets, stream, 300);
      for (const [name, t] of Object.entries(idle.targets)) {
        const lat = lats.get(name) ?? { p50: 0, p99: 0, ttfbP50: 0 };
        results.push({ target: name, stream, ...lat, ...(await throughput(t, stream, connections)) });
      }
    }
  }
  // The peer, on the same stand-in: the tool a team would otherwise run in front of the providers.
  const litellm = await startLiteLlm(idle.upstreamUrl, idle.upstreamKey);
  if (!litellm) peerMissing = true;
  else {
    try {
      const peers = {
        direct: idle.targets.direct,
        byok: idle.targets.byok,
        litellm: { url: `${litellm.url}/v1/chat/completions`, key: litellm.key },
      };
      for (const conns of [50, 1]) {
        for (const [name, t] of Object.entries(peers)) {
          await throughput(t, false, conns, 1); // warm-up
          const r = await autocannon({
            url: t.url,
            method: 'POST',
            duration,
            connections: conns,
            headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
            body: body(false),
          });
          peerResults.push({
            target: name,
            connections: conns,
            rps: r.requests.average,
            // Little's law over a closed loop: autocannon's latency histogram counts whole
            // milliseconds, too coarse for sub-millisecond round trips.
            mean: (conns * 1000) / r.requests.average,
            non2xx: r.non2xx + r.errors,
          });
        }
      }
    } finally {
      litellm.stop();
    }
  }
} finally {
  idle.stop();
}

// The same throughput runs against an upstream that takes time to answer, as real providers do
// (hundreds of milliseconds for a completion): many calls in flight at once, and the question is
// whether the gateway becomes the bottleneck.
if (!values['peer-only']) {
  const busy = await startSet(upstreamMs);
  try {
    for (const stream of [false, true]) {
      for (const [name, t] of Object.entries(busy.targets)) {
        await throughput(t, stream, busyConnections); // warm-up at full load
        busyResults.push({ target: name, stream, ...(await throughput(t, stream, busyConnections)) });
      }
    }
  } finally {
    busy.stop();
  }
}

console.log(
  `\nbench/gateway: ${duration}s per throughput run, ${connections} connections; latency from 300 sequential requests per target, taking turns, after 300 to warm up\n`,
);
console.log(
  'stream  target      req/s    p50 ms   p99 ms  TTFB p50   added p50   throughput vs direct   non-2xx',
);
for (const r of results) {
  const direct = results.find((d) => d.target === 'direct' && d.stream === r.stream)!;
  const added = r.p50 - direct.p50;
  const ratio = r.rps / direct.rps;
  const verdict =
    r.target === 'direct' || r.target === 'bare proxy'
      ? ''
      : `${added <= 1 ? 'met' : 'MISSED'} / ${ratio >= 0.8 ? 'met' : 'MISSED'}`;
  console.log(
    `${String(r.stream).padEnd(7)} ${r.target.padEnd(10)} ${r.rps.toFixed(0).padStart(6)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(8)} ${r.ttfbP50.toFixed(2).padStart(9)} ${added.toFixed(2).padStart(10)} ms ${ratio.toFixed(2).padStart(12)}x  ${verdict.padEnd(14)} ${r.non2xx}`,
  );
}
console.log('\ntargets: added p50 <= 1 ms, throughput >= 0.8x direct (verdicts: latency / throughput)');
for (const stream of [false, true]) {
  const proxy = results.find((r) => r.target === 'bare proxy' && r.stream === stream);
  for (const r of results.filter(
    (x) => x.stream === stream && (x.target === 'byok' || x.target === 'managed'),
  )) {
    if (proxy)
      console.log(
        `${stream ? 'streaming' : 'non-streaming'} ${r.target} / bare proxy throughput = ${(r.rps / proxy.rps).toFixed(2)}x`,
      );
  }
}

console.log(
  `\nthroughput with the upstream answering after ${upstreamMs} ms, ${busyConnections} connections, ${duration}s per run after a warm-up run\n`,
);
console.log('stream  target      req/s   throughput vs direct   non-2xx');
for (const r of busyResults) {
  const direct = busyResults.find((d) => d.target === 'direct' && d.stream === r.stream)!;
  const ratio = r.rps / direct.rps;
  const verdict = r.target === 'direct' || r.target === 'bare proxy' ? '' : ratio >= 0.8 ? 'met' : 'MISSED';
  console.log(
    `${String(r.stream).padEnd(7)} ${r.target.padEnd(10)} ${r.rps.toFixed(0).padStart(6)} ${ratio.toFixed(2).padStart(12)}x  ${verdict.padEnd(8)} ${r.non2xx}`,
  );
}

if (peerMissing) {
  console.log(
    `\npeer: LiteLLM is not installed (${LITELLM_BIN}); install it with: bash scripts/tools.sh litellm`,
  );
} else {
  console.log(
    `\npeer: LiteLLM proxy (one worker, no database) on the same stand-in, ${duration}s per run after a 1 s warm-up\n`,
  );
  console.log('conns  target      req/s   mean ms   non-2xx');
  for (const r of peerResults) {
    console.log(
      `${String(r.connections).padStart(5)}  ${r.target.padEnd(9)} ${r.rps.toFixed(0).padStart(7)} ${r.mean.toFixed(2).padStart(9)}   ${r.non2xx}`,
    );
  }
  const find = (target: string, conns: number) =>
    peerResults.find((r) => r.target === target && r.connections === conns);
  for (const conns of [50, 1]) {
    const byok = find('byok', conns);
    const litellm = find('litellm', conns);
    const direct = find('direct', conns);
    if (!byok || !litellm || !direct) continue;
    const ratio = byok.rps / litellm.rps;
    console.log(
      `${conns} connection(s): gateway byok / LiteLLM throughput = ${ratio.toFixed(1)}x${conns === 50 ? ` (target >= 20x: ${ratio >= 20 ? 'met' : 'MISSED'})` : ''}; mean added over direct: gateway ${(byok.mean - direct.mean).toFixed(2)} ms, LiteLLM ${(litellm.mean - direct.mean).toFixed(2)} ms${conns === 1 ? ` (target gateway <= 1 ms: ${byok.mean - direct.mean <= 1 ? 'met' : 'MISSED'})` : ''}`,
    );
  }
}
if ([...results, ...busyResults].some((r) => r.non2xx > 0 && r.target !== 'managed')) process.exitCode = 1;
