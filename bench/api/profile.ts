/**
 * Where a GET or PUT ai-config spends its time: runs one bench server (servers.ts) under
 * `node --cpu-prof`, with the bench's BYOK policy in force, drives it with autocannon as run.ts
 * does, then ranks the profile by self time, per function and per package (the server's start
 * included, a second or so). V8 samples on a timer, so time spent waiting for a core inside a
 * system call counts against that call (writev, for one, when autocannon shares the machine).
 * Usage: node --import tsx bench/api/profile.ts [--route get|put] [--seconds 8] [--connections 50]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values } = parseArgs({
  options: {
    route: { type: 'string' },
    seconds: { type: 'string' },
    connections: { type: 'string' },
  },
});
const route = values.route ?? 'get';
if (route !== 'get' && route !== 'put') throw new Error('--route: get or put');
const duration = Number(values.seconds ?? 8);
const connections = Number(values.connections ?? 50);

const dir = mkdtempSync(join(tmpdir(), 'rigbox-bench-profile-'));
const child = spawn(
  process.execPath,
  ['--cpu-prof', '--cpu-prof-dir', dir, '--import', 'tsx', join(import.meta.dirname, 'servers.ts')],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_BARE: '0' } },
);
const server = await new Promise<{ url: string; token: string }>((ok, fail) => {
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.includes('\n')) ok(JSON.parse(out.split('\n')[0] as string));
  });
  child.on('exit', (code) => fail(new Error(`bench server exited with ${code}`)));
});

const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
const paths: string[] = [];
for (let i = 0; i < connections; i++) {
  const res = await fetch(`${server.url}/api/workspaces`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      name: `profile-${i}`,
      ai_config: { mode: 'byok', provider: 'openai', api_key: `sk-proj-benchmark${i}x`, model: 'gpt-4o' },
    }),
  });
  if (res.status !== 201) throw new Error(`creating a workspace: HTTP ${res.status}`);
  paths.push(`/api/workspaces/${((await res.json()) as { id: string }).id}/ai-config`);
}
const policy = await fetch(`${server.url}/api/users/me/byok-policy`, {
  method: 'PUT',
  headers,
  body: JSON.stringify({
    enforcement: 'enforce',
    allowed_modes: ['byok'],
    allowed_providers: ['openai'],
    allowed_models: { openai: ['gpt-4o'] },
    max_key_age_days: 90,
  }),
});
if (policy.status !== 200) throw new Error(`setting the BYOK policy: HTTP ${policy.status}`);

let n = 0;
const body = () =>
  JSON.stringify({ mode: 'byok', provider: 'openai', api_key: `sk-proj-profile${++n}x`, model: 'gpt-4o' });
let client = 0;
const result = await autocannon({
  url: `${server.url}${paths[0]}`,
  headers,
  duration,
  connections,
  ...(route === 'put'
    ? {
        method: 'PUT' as const,
        setupClient: (c: autocannon.Client) => {
          const path = paths[client++ % paths.length] as string;
          c.setRequests([
            { method: 'PUT', path, body: body(), setupRequest: (req) => ({ ...req, path, body: body() }) },
          ]);
        },
      }
    : {}),
});
child.removeAllListeners('exit');
const exited = new Promise((ok) => child.once('exit', ok));
child.kill('SIGTERM');
await exited;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error('no profile written');
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
};
rmSync(dir, { recursive: true, force: true });

const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
let total = 0;
const perFunction = new Map<string, number>();
const perPackage = new Map<string, number>();
const add = (m: Map<string, number>, k: string, t: number) => m.set(k, (m.get(k) ?? 0) + t);
profile.samples.forEach((id, i) => {
  const t = profile.timeDeltas[i] ?? 0;
  total += t;
  const { functionName, url, lineNumber } = (nodes.get(id) as ProfileNode).callFrame;
  const where = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(service|bench)\//, '$1/');
  add(perFunction, `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`, t);
  const pkg = url.includes('node_modules/')
    ? (/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? url)
    : url.startsWith('node:')
      ? 'node (core)'
      : url.includes('/service/src/')
        ? `service/src/${url.split('/service/src/')[1]?.split('/')[0]}`
        : functionName || '(native)';
  add(perPackage, pkg, t);
});
const top = (m: Map<string, number>, count: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
console.log(
  `${route.toUpperCase()} ai-config: ${result.requests.average.toFixed(0)} req/s under the profiler, ${result.non2xx} non-2xx, ${(total / 1e6).toFixed(1)} s sampled`,
);
console.log(`\nself time by function\n${top(perFunction, 30)}`);
console.log(`\nself time by package\n${top(perPackage, 20)}`);
