/**
 * Provider benchmark, once per engine (OpenTofu and HashiCorp Terraform, --engines):
 *   - `apply` (create; median of --apply-rounds, default 3, each after a `destroy` that is
 *     not timed) and then `plan` (refresh, no changes; median of --plan-rounds, default 11),
 *     null and rigbox taking turns in both, of N rigbox_workspace_ai_config
 *     vs N null_resource (the real hashicorp/null, built by `npm run tools`), for N = 100 and 500;
 *     rigbox is the release's single executable, installed from the packed mirror;
 *   - time from process start to the go-plugin handshake line, and RSS at that moment, for
 *     the single executable vs the plain bundle (run by node) vs terraform-provider-null.
 * Targets: plan <= 1.3x and apply <= 1.5x the null baseline; the single executable at its
 * handshake in <= 45 ms.
 * The rigbox resources are in managed mode, so the figures are the provider's and the API's own
 * cost (a key source adds one Vault or SSM read per key applied).
 * NODE_EXTRA_CA_CERTS: Node reads that file as it starts, before any provider code runs (60 ms here
 * for the system bundle this machine points it at). The engine runs go without it, as on a machine
 * that does not set it; the handshake is timed both ways and both are printed.
 * --wire-ab adds an A/B of the SDK's HTTP/2 layer (TFPLUGIN_WIRE, read by the provider at start):
 * a second rigbox workspace whose provider runs on node:http2 takes its turn beside the one on our
 * own HTTP/2 + HPACK in every apply and plan round, and the single executable's handshake is timed
 * on each. Printed as node/own ratios; see "Performance" in README.md for the threshold applied.
 * Usage: npm run bench:provider [-- --engines tofu,terraform --sizes 100,500 --parallelism 10
 *        --apply-rounds 3 --plan-rounds 11 --wire-ab]
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { PROVIDER_BUNDLE, PROVIDER_SEA, providerKind } from '../../test/support/provider-build.js';
import { RigboxServer } from '../../test/support/rigbox-server.js';
import { ENGINES, type Engine, requireEngine, TofuWorkspace } from '../../test/support/tofu.js';

const { values } = parseArgs({
  options: {
    engines: { type: 'string' },
    sizes: { type: 'string' },
    parallelism: { type: 'string' },
    'apply-rounds': { type: 'string' },
    'plan-rounds': { type: 'string' },
    'wire-ab': { type: 'boolean' },
  },
});
const sizes = (values.sizes ?? '100,500').split(',').map(Number);
const parallelism = values.parallelism ?? '10';
const applyRounds = Number(values['apply-rounds'] ?? 3);
const planRounds = Number(values['plan-rounds'] ?? 11);
const engines = (values.engines?.split(',') ?? [...ENGINES]) as Engine[];
const wireAb = values['wire-ab'] === true;
for (const e of engines) requireEngine(e);
const kind = providerKind();
if (kind.kind !== 'sea') throw new Error(`the build made no single executable: ${kind.reason}`);
// Taken out of this process's environment, so that tofu and the providers it starts run without it.
const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
delete process.env.NODE_EXTRA_CA_CERTS;

const REPO = join(import.meta.dirname, '../..');
const MIRROR = join(REPO, '.tools/mirror/registry.opentofu.org');
const NULL_VERSION = readdirSync(join(MIRROR, 'hashicorp/null'))[0] ?? '';
const NULL_DIR = join(MIRROR, 'hashicorp/null', NULL_VERSION, 'linux_amd64');
const NULL_BIN = join(NULL_DIR, readdirSync(NULL_DIR)[0] ?? '');

const seconds = (ms: number) => (ms / 1000).toFixed(2);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Starts a provider as Terraform would and times it to its handshake line; RSS from /proc then. */
function handshake(
  binary: string,
  protocol: '5' | '6',
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ ms: number; rssMb: number }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(binary, [], {
      env: {
        ...process.env,
        TF_PLUGIN_MAGIC_COOKIE: 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2',
        PLUGIN_PROTOCOL_VERSIONS: protocol,
        PLUGIN_CLIENT_CERT: CLIENT_CERT,
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    child.stdout.once('data', () => {
      const ms = performance.now() - t;
      let rssMb = 0;
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      } catch {}
      child.kill('SIGKILL');
      resolve({ ms, rssMb });
    });
    child.on('error', reject);
  });
}

// A client certificate like the one Terraform passes under AutoMTLS.
const { createServerCertificate } = await import('@rigbox/tfplugin');
const { certPem: CLIENT_CERT, keyPem: CLIENT_KEY } = createServerCertificate();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/**
 * --wire-ab: the provider's own CPU time (utime + stime from /proc, 10 ms ticks) for `calls` health
 * checks, 10 in flight, over AutoMTLS on its unix socket, on one wire. CPU time, unlike wall time,
 * hardly depends on what else the machine runs.
 */
async function unaryCpuMs(wire: 'own' | 'node', calls: number): Promise<number> {
  const child = spawn(PROVIDER_SEA, [], {
    env: {
      ...process.env,
      TF_PLUGIN_MAGIC_COOKIE: 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2',
      PLUGIN_PROTOCOL_VERSIONS: '6',
      PLUGIN_CLIENT_CERT: CLIENT_CERT,
      PLUGIN_UNIX_SOCKET_DIR: '/tmp',
      TFPLUGIN_WIRE: wire,
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise((ok) => child.once('exit', ok));
  const line = await new Promise<string>((ok) => child.stdout.once('data', (d) => ok(String(d))));
  const [, , network, address, , cert] = line.trim().split('|');
  if (network !== 'unix') throw new Error(`the provider listened on ${network}, not a unix socket`);
  const pem =
    Buffer.from(cert ?? '', 'base64')
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  const session = http2.connect('https://localhost', {
    createConnection: () =>
      tlsConnect({
        path: address ?? '',
        ca: `-----BEGIN CERTIFICATE-----\n${pem.join('\n')}\n-----END CERTIFICATE-----\n`,
        cert: CLIENT_CERT,
        key: CLIENT_KEY,
        ALPNProtocols: ['h2'],
        checkServerIdentity: () => undefined,
      }),
  });
  const call = (path: string) =>
    new Promise<void>((ok, fail) => {
      const req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      req.on('trailers', (t) => {
        if (t['grpc-status'] !== '0') fail(new Error(`${path}: grpc-status ${t['grpc-status']}`));
      });
      req.resume();
      req.on('end', ok);
      req.on('error', fail);
      req.end(Buffer.alloc(5));
    });
  const ticks = () => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(fields[11]) + Number(fields[12]);
  };
  await call('/grpc.health.v1.Health/Check');
  const before = ticks();
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next++ < calls) await call('/grpc.health.v1.Health/Check');
    }),
  );
  const used = (ticks() - before) * 10;
  await call('/plugin.GRPCController/Shutdown').catch(() => {});
  session.destroy();
  await exited;
  return used;
}

const server = await new RigboxServer().start();
const token = server.token('bench');
const env = { RIGBOX_ENDPOINT: server.url, RIGBOX_TOKEN: token };

async function createWorkspaces(n: number, tag = ''): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${server.url}/api/workspaces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `bench-${tag}${n}-${i}` }),
    });
    ids.push(((await res.json()) as { id: string }).id);
  }
  return ids;
}

const rigboxConfig = (ids: string[]) =>
  `terraform {\n  required_providers {\n    rigbox = { source = "rigbox/rigbox" }\n  }\n}\nprovider "rigbox" {}\n` +
  ids
    .map(
      (id, i) =>
        `resource "rigbox_workspace_ai_config" "w${i}" {\n  workspace_id = "${id}"\n  mode = "managed"\n  ai_provider = "openai"\n  model = "gpt-4o"\n}\n`,
    )
    .join('');
const nullConfig = (n: number) =>
  `terraform {\n  required_providers {\n    null = { source = "hashicorp/null", version = "${NULL_VERSION}" }\n  }\n}\n` +
  Array.from(
    { length: n },
    (_, i) => `resource "null_resource" "r${i}" {\n  triggers = { model = "gpt-4o" }\n}\n`,
  ).join('');

interface Row {
  engine: Engine;
  n: number;
  what: 'apply' | 'plan';
  nullMs: number;
  rigboxMs: number;
  /** With --wire-ab: the same rigbox configuration, its provider on node:http2 (TFPLUGIN_WIRE=node). */
  rigboxNodeMs?: number;
}
const rows: Row[] = [];
try {
  for (const engine of engines)
    for (const n of sizes) {
      const ids = await createWorkspaces(n);
      // The node:http2 workspace manages workspaces of its own, so the two never share objects.
      const nodeIds = wireAb ? await createWorkspaces(n, 'node-') : [];
      const names = wireAb ? ['null', 'rigbox', 'rigbox-node'] : ['null', 'rigbox'];
      // Both workspaces are set up first; then their plans take turns, so that a slower or faster
      // phase of a shared machine falls on both alike rather than on whichever ran second.
      const results: Record<string, { applies: number[]; plans: number[] }> = {};
      const workspaces: Record<string, TofuWorkspace> = {};
      try {
        for (const [name, hcl] of [
          ['null', nullConfig(n)],
          ['rigbox', rigboxConfig(ids)],
          ...(wireAb ? [['rigbox-node', rigboxConfig(nodeIds)] as const] : []),
        ] as const) {
          const ws = new TofuWorkspace(
            name === 'rigbox-node'
              ? { ...env, TFPLUGIN_WIRE: 'node' }
              : name === 'rigbox' && wireAb
                ? { ...env, TFPLUGIN_WIRE: 'own' }
                : env,
            engine,
          );
          workspaces[name] = ws;
          ws.write(hcl);
          await ws.init();
          results[name] = { applies: [], plans: [] };
        }
        // An apply that creates can be repeated after a destroy, which is not timed.
        for (let i = 0; i < applyRounds; i++) {
          for (const name of names) {
            const ws = workspaces[name] as TofuWorkspace;
            if (i > 0)
              await ws.ok([
                'destroy',
                '-auto-approve',
                '-no-color',
                '-input=false',
                `-parallelism=${parallelism}`,
              ]);
            (results[name] as { applies: number[] }).applies.push(
              await timed(() => ws.apply(`-parallelism=${parallelism}`)),
            );
          }
        }
        // Plan changes nothing, so it can be repeated: the median of several steadies the figure.
        for (let i = 0; i < planRounds; i++) {
          for (const name of names) {
            const ws = workspaces[name] as TofuWorkspace;
            (results[name] as { plans: number[] }).plans.push(
              await timed(async () => {
                const res = await ws.plan(`-parallelism=${parallelism}`);
                if (res.code !== 0)
                  throw new Error(`plan after apply was not empty (exit ${res.code}):\n${res.stdout}`);
              }),
            );
          }
        }
      } finally {
        for (const ws of Object.values(workspaces)) ws.dispose();
      }
      for (const what of ['apply', 'plan'] as const) {
        const pick = (r: { applies: number[]; plans: number[] }) =>
          median(what === 'apply' ? r.applies : r.plans);
        rows.push({
          engine,
          n,
          what,
          nullMs: pick(results.null!),
          rigboxMs: pick(results.rigbox!),
          ...(wireAb ? { rigboxNodeMs: pick(results['rigbox-node']!) } : {}),
        });
      }
    }

  // Taking turns, as above; 21 rounds, the median of each.
  const sea: { ms: number; rssMb: number }[] = [];
  const bundle: { ms: number; rssMb: number }[] = [];
  const nul: { ms: number; rssMb: number }[] = [];
  const seaExtraCa: { ms: number; rssMb: number }[] = [];
  const seaNode: { ms: number; rssMb: number }[] = [];
  for (let i = 0; i < 21; i++) {
    sea.push(await handshake(PROVIDER_SEA, '6', wireAb ? { TFPLUGIN_WIRE: 'own' } : {}));
    if (wireAb) seaNode.push(await handshake(PROVIDER_SEA, '6', { TFPLUGIN_WIRE: 'node' }));
    bundle.push(await handshake(PROVIDER_BUNDLE, '6'));
    nul.push(await handshake(NULL_BIN, '5'));
    if (extraCaCerts)
      seaExtraCa.push(await handshake(PROVIDER_SEA, '6', { NODE_EXTRA_CA_CERTS: extraCaCerts }));
  }

  console.log(
    `\nbench/provider: parallelism ${parallelism}, rigbox resources in managed mode, hashicorp/null ${NULL_VERSION}\n`,
  );
  console.log('engine     N     step    null s   rigbox s   ratio   target');
  for (const r of rows) {
    const ratio = r.rigboxMs / r.nullMs;
    const target = r.what === 'plan' ? 1.3 : 1.5;
    console.log(
      `${r.engine.padEnd(10)} ${String(r.n).padEnd(5)} ${r.what.padEnd(6)} ${seconds(r.nullMs).padStart(7)} ${seconds(r.rigboxMs).padStart(10)} ${ratio.toFixed(2).padStart(6)}x  <= ${target}x ${ratio <= target ? 'met' : 'MISSED'}`,
    );
  }
  const ms = (xs: { ms: number }[]) => median(xs.map((x) => x.ms));
  const rss = (xs: { rssMb: number }[]) => median(xs.map((x) => x.rssMb)).toFixed(0);
  const seaMs = ms(sea);
  console.log(
    `\nhandshake (median of 21): single executable ${seaMs.toFixed(0)} ms, RSS ${rss(sea)} MB; ` +
      `plain bundle (node) ${ms(bundle).toFixed(0)} ms, RSS ${rss(bundle)} MB (single executable ${(seaMs / ms(bundle)).toFixed(2)}x); ` +
      `null ${ms(nul).toFixed(0)} ms, RSS ${rss(nul)} MB. Target single executable <= 45 ms: ${seaMs <= 45 ? 'met' : 'MISSED'}`,
  );
  if (wireAb) {
    const cpu = { own: [] as number[], node: [] as number[] };
    for (let i = 0; i < 5; i++)
      for (const wire of ['own', 'node'] as const) cpu[wire].push(await unaryCpuMs(wire, 3000));
    console.log(
      "\nwire A/B: the SDK's own HTTP/2 + HPACK vs node:http2 (TFPLUGIN_WIRE), same engine, rounds interleaved",
    );
    console.log('engine     N     step    own s    node s   node/own');
    for (const r of rows) {
      if (r.rigboxNodeMs === undefined) continue;
      console.log(
        `${r.engine.padEnd(10)} ${String(r.n).padEnd(5)} ${r.what.padEnd(6)} ${seconds(r.rigboxMs).padStart(7)} ${seconds(r.rigboxNodeMs).padStart(9)} ${(r.rigboxNodeMs / r.rigboxMs).toFixed(3).padStart(9)}x`,
      );
    }
    const nodeMs = ms(seaNode);
    console.log(
      `handshake (median of 21, single executable): own ${seaMs.toFixed(1)} ms, RSS ${rss(sea)} MB; ` +
        `node:http2 ${nodeMs.toFixed(1)} ms, RSS ${rss(seaNode)} MB (node - own: ${(nodeMs - seaMs).toFixed(1)} ms)`,
    );
    const [own, node] = [median(cpu.own), median(cpu.node)];
    console.log(
      `provider CPU for 3,000 health checks, 10 in flight (median of 5, interleaved): own ${own} ms ` +
        `(${((own / 3000) * 1000).toFixed(0)} us a call), node:http2 ${node} ms (${((node / 3000) * 1000).toFixed(0)} us a call), node/own ${(node / own).toFixed(2)}x`,
    );
  }
  if (extraCaCerts) {
    console.log(
      `NODE_EXTRA_CA_CERTS is set here (${extraCaCerts}); Node loads it at start, before the provider runs. ` +
        `The runs above are without it. With it, the single executable reaches its handshake in ${ms(seaExtraCa).toFixed(0)} ms, ` +
        'and each of the 3 (plan) or 4 (apply) provider starts per command pays the difference.',
    );
  }
} finally {
  await server.dispose();
}
