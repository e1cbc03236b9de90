import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolPath } from './engines/engine-process.js';
import { apiClient } from './support/api.js';
import { canaryKey } from './support/harness.js';
import { REPO, RigboxServer } from './support/rigbox-server.js';

/**
 * API fuzzing (issue 7): schemathesis, pinned in scripts/versions.env and installed by
 * `npm run tools`, generates requests from the service's own /openapi.json against a real
 * `rigbox serve`, once with a valid token and once with none. Checks: no 5xx, every response in the
 * documented schema and status codes, and no response echoing a submitted key. Its hooks
 * (test/support/api_fuzz_hooks.py) plant a canary into the generated `api_key`s and fail any response
 * that carries it; after the run the server's log and every recorded response are scanned again here.
 * A missing schemathesis fails the test (toolPath throws), under CI=true as everywhere.
 */

const HOOKS = join(REPO, 'test/support/api_fuzz_hooks.py');
/** At least this many generated requests over both passes (each pass also has its own floor). */
const MIN_REQUESTS = 2000;
/** Test cases per operation and phase; the no-token pass answers 401 fast and generates more per case. */
const PASSES = [
  { name: 'token', auth: true, maxExamples: 120, minRequests: 1000 },
  { name: 'no-token', auth: false, maxExamples: 60, minRequests: 800 },
] as const;
/** Wall-clock bound for one pass; both together take well under a minute on 2 cores. */
const PASS_TIMEOUT_MS = 120_000;
/**
 * The checks: all of schemathesis' but two that contradict the contract rather than test it:
 * `positive_data_acceptance` wants a 2xx for every schema-valid request, while the API's contract
 * refuses some of them by rule (422: a key in managed mode, a provider change without a key; 412: a
 * stale If-Match); `unsupported_method` wants 405 for an unrouted method where Fastify answers 404.
 */
const CHECKS = ['--checks', 'all', '--exclude-checks', 'positive_data_acceptance,unsupported_method'];

const canary = canaryKey('');
const random = canary.slice('CANARY'.length);
/**
 * The canary and every 8-character piece of its random part: a prefix or suffix is an echo too
 * (8 random base64url characters: a chance match in a run's few MB of responses is ~1e-7).
 */
const PIECE = 8;
const needles = [
  canary,
  ...Array.from({ length: random.length - PIECE + 1 }, (_, i) => random.slice(i, i + PIECE)),
];
const leaks = (text: string) => needles.filter((n) => text.includes(n));

interface HarEntry {
  request: { method: string; url: string; postData?: { text?: string } };
  response: { status: number; headers: { name: string; value: string }[]; content: { text?: string } };
}

interface PassResult {
  name: string;
  exitCode: number | null;
  stdout: string;
  generated: number;
  junit: { tests: number; failures: number; errors: number };
  entries: HarEntry[];
  seconds: number;
}

let server: RigboxServer;
let token = '';
let workspaceId = '';
let runtimeToken = '';
const victims: string[] = [];
let work = '';
const results: PassResult[] = [];

/** Setup calls as `bearer`: an HTTP error fails the setup, naming the call. */
async function api(method: string, path: string, bearer: string, body?: unknown) {
  const res = await apiClient(() => server.url, bearer)(method, path, body);
  if (res.status < 200 || res.status > 299)
    throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Record<string, unknown>;
}

const toml = (s: string) => JSON.stringify(s);

/**
 * schemathesis.toml for one pass: path parameters hit the real workspace half the time in positive
 * cases (DELETE gets workspaces of its own, so the others keep theirs), and with a token the runtime
 * env operation gets a runtime token (of another user, whose workspace no fuzzed key can reach: its
 * answer carries that workspace's env by design).
 */
function writeConfig(file: string, auth: boolean) {
  const lines = [
    // A request the API refuses is rejected data whatever the reason: schemathesis' own list plus
    // 412 (a stale If-Match, by contract) and 413 (a body over the 16 KiB limit, refused before it
    // is read, so before the schema is checked).
    '[checks.negative_data_rejection]',
    'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428", "429", "5xx"]',
    '',
    '[dictionaries.workspace]',
    `values = [${toml(workspaceId)}]`,
    '[dictionaries.victims]',
    `values = [${victims.map(toml).join(', ')}]`,
    '',
    '[parameters]',
    '"path.id" = { dictionary = "workspace", probability = 0.5 }',
    '',
    '[[operations]]',
    'include-method = "DELETE"',
    'parameters = { "path.id" = { dictionary = "victims", probability = 0.3 } }',
  ];
  if (auth) {
    lines.push(
      '',
      '[[operations]]',
      'include-path = "/api/runtime/env"',
      `headers = { Authorization = ${toml(`Bearer ${runtimeToken}`)} }`,
    );
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

async function runPass(pass: (typeof PASSES)[number]): Promise<PassResult> {
  const dir = join(work, pass.name);
  const config = join(work, `${pass.name}.toml`);
  writeConfig(config, pass.auth);
  const junitPath = join(dir, 'junit.xml');
  const harPath = join(dir, 'har.json');
  const args = [
    '--config-file',
    config,
    'run',
    `${server.url}/openapi.json`,
    ...(pass.auth ? ['--header', `Authorization: Bearer ${token}`] : []),
    ...CHECKS,
    '--max-examples',
    String(pass.maxExamples),
    // One worker: with several, Python 3.11's compile() races in hypothesis' lambda descriptions
    // ("AST constructor recursion depth mismatch" runtime errors in the coverage phase).
    '--workers',
    '1',
    '--request-timeout',
    '10',
    '--generation-database',
    'none',
    // The HAR must hold the exact bytes: sanitizing would mask an echoed key as [Filtered].
    '--output-sanitize',
    'false',
    '--report',
    'junit,har',
    '--report-dir',
    dir,
    '--report-junit-path',
    junitPath,
    '--report-har-path',
    harPath,
    '--no-color',
    ...(process.env.RIGBOX_FUZZ_SEED ? ['--seed', process.env.RIGBOX_FUZZ_SEED] : []),
  ];
  const started = Date.now();
  const child = spawn(toolPath('st'), args, {
    cwd: work,
    env: {
      ...process.env,
      SCHEMATHESIS_HOOKS: HOOKS,
      RIGBOX_FUZZ_CANARY: canary,
      RIGBOX_FUZZ_KEEP_WORKSPACE: workspaceId,
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), PASS_TIMEOUT_MS);
  const exitCode = await new Promise<number | null>((ok) => child.on('close', (code) => ok(code)));
  clearTimeout(timer);
  const seconds = (Date.now() - started) / 1000;
  if (exitCode === null)
    throw new Error(`schemathesis (${pass.name}) ran over ${PASS_TIMEOUT_MS} ms:\n${stdout}`);

  const generated = Number(/^\s*(\d+) generated\b/m.exec(stdout)?.[1] ?? Number.NaN);
  const root = /<testsuites\b([^>]*)>/.exec(readFileSync(junitPath, 'utf8'))?.[1] ?? '';
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? Number.NaN);
  const entries = (JSON.parse(readFileSync(harPath, 'utf8')) as { log: { entries: HarEntry[] } }).log.entries;
  return {
    name: pass.name,
    exitCode,
    stdout,
    generated,
    junit: { tests: attr('tests'), failures: attr('failures'), errors: attr('errors') },
    entries,
    seconds,
  };
}

function statusCounts(entries: HarEntry[]) {
  const counts: Record<string, number> = {};
  for (const e of entries) {
    const key = `${String(e.response.status).slice(0, 1)}xx`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

beforeAll(async () => {
  // Fails first and clearly when `npm run tools` has not installed it, or installed another version.
  const pinned = /^SCHEMATHESIS_VERSION=(\S+)$/m.exec(
    readFileSync(join(REPO, 'scripts/versions.env'), 'utf8'),
  )?.[1];
  const version = spawnSync(toolPath('st'), ['--version'], { encoding: 'utf8' }).stdout;
  expect(version, 'run `npm run tools` to install the pinned schemathesis').toContain(`version ${pinned}`);
  work = mkdtempSync(join(tmpdir(), 'rigbox-fuzz-'));
  server = await new RigboxServer().start();
  token = server.token('fuzzer');
  workspaceId = String((await api('POST', '/api/workspaces', token, { name: 'fuzzed' })).id);
  for (let i = 0; i < 5; i++) {
    victims.push(String((await api('POST', '/api/workspaces', token, { name: `to-delete-${i}` })).id));
  }
  // A stored canary key on the workspace the fuzzer reads and writes: every read must still hide it.
  await api('PUT', `/api/workspaces/${workspaceId}/ai-config`, token, {
    mode: 'byok',
    provider: 'openai',
    api_key: `sk-proj-${canary}`,
  });
  const other = server.token('fuzz-runtime');
  const runtimeWs = String(
    (
      await api('POST', '/api/workspaces', other, {
        name: 'rt',
        ai_config: { mode: 'managed', provider: 'openai' },
      })
    ).id,
  );
  runtimeToken = String((await api('POST', `/api/workspaces/${runtimeWs}/runtime-tokens`, other)).token);
});

afterAll(async () => {
  await server?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('API fuzzing: schemathesis against /openapi.json', () => {
  for (const pass of PASSES) {
    it(
      `${pass.auth ? 'with a valid token' : 'without a token'}: no 5xx, every response as documented, no key echoed`,
      async () => {
        const r = await runPass(pass);
        results.push(r);
        const statuses = statusCounts(r.entries);
        const planted = r.entries.filter((e) => e.request.postData?.text?.includes(canary)).length;
        console.log(
          `schemathesis ${pass.name}: ${r.generated} generated, ${r.entries.length} requests recorded, ` +
            `${planted} carried the canary key, statuses ${JSON.stringify(statuses)}, ` +
            `JUnit ${JSON.stringify(r.junit)}, ${r.seconds.toFixed(1)} s`,
        );
        // On failure the whole report (failures, reproducing curl lines, seed) is in the message.
        expect(r.exitCode, r.stdout).toBe(0);
        expect(r.junit, r.stdout).toEqual({ tests: r.junit.tests, failures: 0, errors: 0 });
        expect(r.junit.tests).toBeGreaterThanOrEqual(12);
        expect(r.generated, r.stdout).toBeGreaterThanOrEqual(pass.minRequests);
        expect(r.entries.length).toBeGreaterThanOrEqual(r.generated);
        expect(statuses['5xx'] ?? 0).toBe(0);

        const echoed = r.entries.filter(
          (e) =>
            leaks(e.response.content.text ?? '').length > 0 ||
            e.response.headers.some((h) => leaks(h.value).length > 0),
        );
        expect(echoed.map((e) => `${e.request.method} ${e.request.url} -> ${e.response.status}`)).toEqual([]);

        if (pass.auth) {
          // The canary went in: stored (2xx) and refused (4xx), and the fuzzer reached real data.
          expect(planted).toBeGreaterThanOrEqual(50);
          const accepted = r.entries.filter(
            (e) => e.request.postData?.text?.includes(canary) && e.response.status < 300,
          );
          expect(accepted.length).toBeGreaterThan(0);
          expect(
            r.entries.filter((e) => e.request.url.includes(workspaceId) && e.response.status === 200).length,
          ).toBeGreaterThan(20);
        } else {
          // Without a token nothing succeeds.
          const succeeded = r.entries.filter((e) => e.response.status < 300);
          expect(
            succeeded.map((e) => `${e.request.method} ${e.request.url} -> ${e.response.status}`),
          ).toEqual([]);
        }
      },
      PASS_TIMEOUT_MS + 30_000,
    );
  }

  it(`generated at least ${MIN_REQUESTS} requests, and the server logged no 5xx and no key`, () => {
    expect(results.map((r) => r.name)).toEqual(PASSES.map((p) => p.name));
    const total = results.reduce((n, r) => n + r.generated, 0);
    const seconds = results.reduce((n, r) => n + r.seconds, 0);
    console.log(`schemathesis: ${total} requests in ${seconds.toFixed(1)} s over ${results.length} passes`);
    expect(total).toBeGreaterThanOrEqual(MIN_REQUESTS);

    const log = server.output;
    expect(leaks(log)).toEqual([]);
    const lines = log.split('\n').filter((l) => l.startsWith('{'));
    const requestLines = lines.filter((l) => l.includes('"msg":"request"'));
    expect(requestLines.length).toBeGreaterThanOrEqual(total);
    expect(lines.filter((l) => /"status":5\d\d\b/.test(l))).toEqual([]);
    // pino levels: 50 error, 60 fatal ("request failed", a key that failed to decrypt, ...).
    expect(lines.filter((l) => /"level":(50|60)\b/.test(l))).toEqual([]);
  });
});
