/**
 * Codec A/B: each of the SDK's hand-written codecs against the kept library doing the same job,
 * on the work a 100-resource `tofu plan` gives the provider.
 *   - protobuf: tfplugin/src/proto (ours) vs protobufjs 8, shipped as a careful author minding
 *     start time would ship it: the code `pbjs -t static-module` (protobufjs-cli) generates from
 *     tfplugin/proto/tfplugin6.proto, on protobufjs/minimal, bundled into the provider: no
 *     reflection and no code made at start. Two reflection setups are timed as diagnostics:
 *     protobufjs/light with the .proto's JSON descriptor bundled (what `pbjs -t json` writes),
 *     and the full build parsing the .proto at start. Generated here, in a temporary directory.
 *   - cty msgpack: tfplugin/src/values (ours) vs @msgpack/msgpack plus the thinnest typing pass
 *     that gives the server the same values (bench/codecs/msgpack-library.ts).
 * The work: for each of N (100) rigbox_workspace_ai_config in managed mode, as bench/provider
 * plans them (refresh, no change), the requests and answers of ValidateResourceConfig,
 * UpgradeResourceState, ReadResource and PlanResourceChange, with the values made by the real
 * schema (provider/src) and encoder (requests' msgpack in cty's key order). Ours and the library
 * must give equal results on all of it (decoded requests and values, encoded bytes) before anything
 * is timed; the run stops otherwise.
 * Measured, per codec and side:
 *   start: a fresh `node` (without NODE_EXTRA_CA_CERTS) loads the codec's bundle (esbuild, CJS,
 *     as provider/scripts/bundle.mjs builds the provider; no SEA code cache) and handles the first
 *     message; ms from before the require to after that message, median of --starts (15).
 *   cold plan: CPU (user + system) for the plan's work in such fresh processes, right after the
 *     start, split as a plan splits it: ValidateResourceConfig in one process (tofu's second
 *     start), the other three in another (the third, the plan walk); the sum of the two medians.
 *     Start figures are the median over both kinds of process.
 *   warm plan: CPU per plan in one long-lived process, --rounds (41) samples of 5 plans each,
 *     ours and the library taking turns; median.
 * Threshold, set before measuring, the one applied to the HTTP/2 layer (tfplugin/README.md):
 * keep ours only if it saves a user something they would notice: >= 20 ms per provider start,
 * or >= 10% of a 100-resource `tofu plan` (0.45 s for hashicorp/null at N=100 in bench/provider,
 * so 45 ms). A plan starts the provider three times, so the saving per plan is 3 x the start
 * saving + the plan saving (the larger of cold and warm). Otherwise: switch to the library.
 * Usage: npm run bench:codecs [-- --resources 100 --starts 15 --rounds 41]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { build } from 'esbuild';
import protobuf from 'protobufjs';
import { WorkspaceAiConfigResource } from '../../provider/src/resources/workspace-ai-config.resource.js';
import { blockType } from '../../tfplugin/src/framework/schema.js';
import { PROVIDER_METHODS } from '../../tfplugin/src/proto/messages.js';
import { encode } from '../../tfplugin/src/proto/protobuf.js';
import { type CtyType, encodeDynamic, UNKNOWN, type Value } from '../../tfplugin/src/values/values.js';
import {
  type MsgpackCodec,
  type MsgpackPlan,
  type ProtoCodec,
  type ProtoPlan,
  runMsgpackPlan,
  runProtoPlan,
} from './codec.js';
import { make as libraryMsgpack } from './msgpack-library.js';
import { make as oursMsgpack } from './msgpack-ours.js';
import { make as oursProto } from './proto-ours.js';
import { make as protobufjsProto, staticLookup } from './proto-protobufjs.js';

const { values } = parseArgs({
  options: {
    resources: { type: 'string' },
    starts: { type: 'string' },
    rounds: { type: 'string' },
  },
});
const N = Number(values.resources ?? 100);
const STARTS = Number(values.starts ?? 15);
const ROUNDS = Number(values.rounds ?? 41);
const PLANS_PER_SAMPLE = 5;
/** bench/provider's wall time of a 100-resource `tofu plan` with hashicorp/null: the reference. */
const PLAN_REFERENCE_MS = 450;
const START_THRESHOLD_MS = 20;
const PLAN_THRESHOLD_MS = 0.1 * PLAN_REFERENCE_MS;
const STARTS_PER_PLAN = 3;

const HERE = import.meta.dirname;
const PROTO_DIR = join(HERE, '../../tfplugin/proto');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

// --- the work of one plan, from the real schema and encoder ---

const resource = new WorkspaceAiConfigResource();
const type = blockType(resource.schema.block);
/** The same type with attributes in cty's order (Go's byte-wise sort), for bytes as tofu sends them. */
function ctyOrder(t: CtyType): CtyType {
  if (typeof t === 'string') return t;
  const [kind, inner] = t;
  if (kind === 'object') {
    const names = Object.keys(inner).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return ['object', Object.fromEntries(names.map((n) => [n, ctyOrder(inner[n] as CtyType)]))];
  }
  if (kind === 'tuple') return ['tuple', inner.map(ctyOrder)];
  return [kind, ctyOrder(inner)];
}
const sentType = ctyOrder(type);
const msgpack = (v: Value, t: CtyType = sentType) => encodeDynamic(v, t).msgpack;
const sortedJson = (v: Record<string, Value>) =>
  Buffer.from(
    JSON.stringify(
      Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, v[k]]),
      ),
    ),
  );

interface Work {
  proto: ProtoPlan;
  values: MsgpackPlan;
}

/**
 * A plan's work in the two provider processes that do it: the second start validates every
 * resource, the third walks the plan (upgrade, refresh, plan). The first only reads the schema.
 */
function planWork(n: number): { validation: Work; walk: Work } {
  const method = (name: string) => {
    const m = PROVIDER_METHODS.get(name);
    if (!m) throw new Error(`no method ${name}`);
    return m;
  };
  const typeName = resource.typeName;
  const capabilities = { deferralAllowed: false, writeOnlyAttributesAllowed: true };
  const rpcs: ProtoPlan['rpcs'][number][] = [];
  const validationRpcs: ProtoPlan['rpcs'][number][] = [];
  const reads: Uint8Array[] = [];
  const validationReads: Uint8Array[] = [];
  const writes: Value[] = [];
  for (let i = 0; i < n; i++) {
    const id = `ws_${(0x5eed0000 + i).toString(16)}${'0'.repeat(16)}`;
    const config: Record<string, Value> = {
      id: null,
      workspace_id: id,
      mode: 'managed',
      ai_provider: 'openai',
      model: 'gpt-4o',
      api_key_wo: null,
      api_key_wo_version: null,
      api_key_set: null,
      api_key_fingerprint: null,
      source_version: null,
      api_key_updated_at: null,
      revision: null,
      updated_at: null,
      api_key_source: null,
    };
    const state: Record<string, Value> = {
      ...config,
      id,
      api_key_set: false,
      revision: 1 + (i % 7),
      updated_at: `2026-11-29T20:${String(i % 60).padStart(2, '0')}:00.000Z`,
    };
    const priv = Buffer.from(JSON.stringify({ fingerprint: null, sourceVersion: null }));
    const request = (name: string, value: Record<string, unknown>) => encode(method(name).request, value);
    // The answers as server.ts builds them, with values in the order our writer lays them out.
    const answer = msgpack(state, type);
    validationRpcs.push({
      method: 'ValidateResourceConfig',
      request: request('ValidateResourceConfig', {
        typeName,
        config: { msgpack: msgpack(config) },
        clientCapabilities: capabilities,
      }),
      response: { diagnostics: [] },
    });
    rpcs.push(
      {
        method: 'UpgradeResourceState',
        request: request('UpgradeResourceState', {
          typeName,
          version: 0,
          rawState: { json: sortedJson(state) },
        }),
        response: { upgradedState: { msgpack: answer } },
      },
      {
        method: 'ReadResource',
        request: request('ReadResource', {
          typeName,
          currentState: { msgpack: msgpack(state) },
          private: priv,
          clientCapabilities: capabilities,
        }),
        response: { newState: { msgpack: answer }, private: priv, diagnostics: [] },
      },
      {
        method: 'PlanResourceChange',
        request: request('PlanResourceChange', {
          typeName,
          priorState: { msgpack: msgpack(state) },
          proposedNewState: { msgpack: msgpack(state) },
          config: { msgpack: msgpack(config) },
          priorPrivate: priv,
          clientCapabilities: capabilities,
        }),
        response: {
          plannedState: { msgpack: answer },
          requiresReplace: [],
          plannedPrivate: priv,
          diagnostics: [],
        },
      },
    );
    // Values read: ValidateResourceConfig's config, ReadResource's state, PlanResourceChange's
    // prior, proposed and config (UpgradeResourceState's state is JSON, read alike by both).
    validationReads.push(msgpack(config));
    reads.push(msgpack(state), msgpack(state), msgpack(state), msgpack(config));
    // Values written: the upgraded, read and planned states.
    writes.push(state, state, state);
  }
  return {
    validation: { proto: { rpcs: validationRpcs }, values: { type, reads: validationReads, writes: [] } },
    walk: { proto: { rpcs }, values: { type, reads, writes } },
  };
}

const parts = planWork(N);
/** The whole plan's work, for the equality checks and the warm figures. */
const work: Work = {
  proto: { rpcs: [...parts.validation.proto.rpcs, ...parts.walk.proto.rpcs] },
  values: {
    type,
    reads: [...parts.validation.values.reads, ...parts.walk.values.reads],
    writes: parts.walk.values.writes,
  },
};

// --- the library's loading, as shipped: tfplugin6's JSON descriptor ---

const protoRoot = new protobuf.Root();
protobuf.parse(readFileSync(join(PROTO_DIR, 'tfplugin6.proto'), 'utf8'), protoRoot);
const descriptor = protoRoot.toJSON();

const tmp = mkdtempSync(join(tmpdir(), 'bench-codecs-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
// protobufjs's generated code (its fastest form: no reflection, no code made at run time), as a
// build would make it with protobufjs-cli; it requires protobufjs/minimal, from here.
const STATIC_MODULE = join(tmp, 'tfplugin6.static.cjs');
execFileSync(join(HERE, '../../node_modules/.bin/pbjs'), [
  ...[
    '-t',
    'static-module',
    '-w',
    'commonjs',
    '--no-verify',
    '--no-convert',
    '--no-delimited',
    '--no-comments',
  ],
  ...['-o', STATIC_MODULE, join(PROTO_DIR, 'tfplugin6.proto')],
]);
const requireHere = createRequire(import.meta.url);
writeFileSync(
  STATIC_MODULE,
  readFileSync(STATIC_MODULE, 'utf8').replace(
    'require("protobufjs/minimal")',
    `require(${JSON.stringify(requireHere.resolve('protobufjs/minimal'))})`,
  ),
);

// --- equal results before anything is timed ---

/** Ours decodes absent fields to zero values; protobufjs leaves them to its defaults. */
function sameDecoded(ours: unknown, theirs: unknown, at: string): void {
  const isZero = (v: unknown) =>
    v === null || v === '' || v === 0 || v === false || (v instanceof Uint8Array && v.length === 0);
  const fail = () => {
    throw new Error(`protobuf decode differs at ${at}: ${String(ours)} vs ${String(theirs)}`);
  };
  if (ours instanceof Uint8Array) {
    // protobufjs's default for absent bytes is an empty array.
    const empty = theirs === null || theirs === undefined || (theirs as { length?: number }).length === 0;
    if (isZero(ours) && empty) return;
    if (!(theirs instanceof Uint8Array) || !Buffer.from(ours).equals(Buffer.from(theirs))) fail();
  } else if (Array.isArray(ours)) {
    const list = (theirs ?? []) as unknown[];
    if (!Array.isArray(list) || list.length !== ours.length) fail();
    ours.forEach((o, i) => {
      sameDecoded(o, list[i], `${at}[${i}]`);
    });
  } else if (ours !== null && typeof ours === 'object') {
    if (theirs === null || typeof theirs !== 'object') fail();
    for (const [k, v] of Object.entries(ours))
      sameDecoded(v, (theirs as Record<string, unknown>)[k], `${at}.${k}`);
  } else if (ours !== theirs && !(isZero(ours) && (theirs === null || theirs === undefined))) fail();
}

function checkProto(ours: ProtoCodec, theirs: ProtoCodec): void {
  for (const [i, { method, request, response }] of work.proto.rpcs.entries()) {
    sameDecoded(ours.decode(method, request), theirs.decode(method, request), `${method} #${i}`);
    const a = Buffer.from(ours.encodeFramed(method, response));
    const b = Buffer.from(theirs.encodeFramed(method, response));
    if (!a.equals(b)) throw new Error(`protobuf encode differs: ${method} #${i}`);
  }
}

function checkMsgpack(ours: MsgpackCodec, theirs: MsgpackCodec): void {
  // The plan's values, plus unknowns (a create's plan), a big number as cty sends it, maps,
  // lists, sets and an attribute the schema does not know, so the adapter is held to all of it.
  const extras: [Value, CtyType][] = [
    [{ ...(work.values.writes[0] as Record<string, Value>), revision: UNKNOWN, id: UNKNOWN }, type],
    [
      { a: ['x', 'y'], b: { k: 1.5, l: -70000 }, c: [true, null, UNKNOWN] },
      ['object', { a: ['list', 'string'], b: ['map', 'number'], c: ['set', 'bool'] }],
    ],
  ];
  const reads = [
    ...work.values.reads.map((m) => [m, type] as const),
    ...extras.map(([v, t]) => [msgpack(v, t), t] as const),
  ];
  reads.push([Buffer.from('82a17801a16ecb0000000000000000', 'hex'), ['object', { n: 'number' }]]);
  reads.push([
    Buffer.concat([Buffer.from('81a16e', 'hex'), Buffer.from([0xb4]), Buffer.from('12345678901234567890')]),
    ['object', { n: 'number' }],
  ]);
  for (const [i, [m, t]] of reads.entries()) {
    const a = ours.decode(m, t);
    const b = theirs.decode(m, t);
    if (!isDeepStrictEqual(a, b)) throw new Error(`msgpack decode differs: value #${i}`);
  }
  const writes = [...work.values.writes.map((v) => [v, type] as const), ...extras];
  for (const [i, [v, t]] of writes.entries()) {
    if (!Buffer.from(ours.encode(v, t)).equals(Buffer.from(theirs.encode(v, t))))
      throw new Error(`msgpack encode differs: value #${i}`);
  }
}

const protoCodecs: Record<'ours' | 'static' | 'reflection', ProtoCodec> = {
  ours: oursProto(),
  static: protobufjsProto(protobuf, () => staticLookup(requireHere(STATIC_MODULE))),
  reflection: protobufjsProto(protobuf, () => {
    const root = protobuf.Root.fromJSON(descriptor);
    return (name) => root.lookupType(name);
  }),
};
const msgpackCodecs: Record<'ours' | 'library', MsgpackCodec> = {
  ours: oursMsgpack(),
  library: libraryMsgpack(UNKNOWN),
};
checkProto(protoCodecs.ours, protoCodecs.static);
checkProto(protoCodecs.ours, protoCodecs.reflection);
checkMsgpack(msgpackCodecs.ours, msgpackCodecs.library);

// --- warm: CPU per plan in this process, the two taking turns ---

function warm<K extends string>(run: Record<K, () => unknown>): Record<K, number> {
  const sides = Object.keys(run) as K[];
  const samples = Object.fromEntries(sides.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < 10; r++) for (const side of sides) run[side]();
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of r % 2 ? [...sides].reverse() : sides) {
      const since = process.cpuUsage();
      for (let p = 0; p < PLANS_PER_SAMPLE; p++) run[side]();
      samples[side].push(cpuMs(since) / PLANS_PER_SAMPLE);
    }
  }
  return Object.fromEntries(sides.map((k) => [k, median(samples[k])])) as Record<K, number>;
}

const warmProto = warm({
  ours: () => runProtoPlan(protoCodecs.ours, work.proto),
  static: () => runProtoPlan(protoCodecs.static, work.proto),
  reflection: () => runProtoPlan(protoCodecs.reflection, work.proto),
});
const warmMsgpack = warm({
  ours: () => runMsgpackPlan(msgpackCodecs.ours, work.values),
  library: () => runMsgpackPlan(msgpackCodecs.library, work.values),
});

// --- fresh processes: start and the first (cold) plan ---

{
  writeFileSync(join(tmp, 'tfplugin6.json'), JSON.stringify(descriptor));
  writeFileSync(join(tmp, 'work.json'), JSON.stringify(parts));
  const codecModule = JSON.stringify(join(HERE, 'codec.ts'));
  const entries = {
    'proto-ours': `export { make } from ${JSON.stringify(join(HERE, 'proto-ours.ts'))};
      export { runProtoPlan as runPlan } from ${codecModule};`,
    'proto-protobufjs-static': `import protobuf from 'protobufjs/minimal.js';
      import { make as adapter, staticLookup } from ${JSON.stringify(join(HERE, 'proto-protobufjs.ts'))};
      export const make = () => adapter(protobuf, () => staticLookup(require(${JSON.stringify(STATIC_MODULE)})));
      export { runProtoPlan as runPlan } from ${codecModule};`,
    'proto-protobufjs': `import protobuf from 'protobufjs/light.js';
      import descriptor from ${JSON.stringify(join(tmp, 'tfplugin6.json'))};
      import { make as adapter } from ${JSON.stringify(join(HERE, 'proto-protobufjs.ts'))};
      export const make = () => adapter(protobuf, () => {
        const root = protobuf.Root.fromJSON(descriptor);
        return (name) => root.lookupType(name);
      });
      export { runProtoPlan as runPlan } from ${codecModule};`,
    'proto-protobufjs-parse': `import protobuf from 'protobufjs';
      import { readFileSync } from 'node:fs';
      import { make as adapter } from ${JSON.stringify(join(HERE, 'proto-protobufjs.ts'))};
      export const make = () => adapter(protobuf, () => {
        const root = new protobuf.Root();
        protobuf.parse(readFileSync(${JSON.stringify(join(PROTO_DIR, 'tfplugin6.proto'))}, 'utf8'), root);
        return (name) => root.lookupType(name);
      });
      export { runProtoPlan as runPlan } from ${codecModule};`,
    'msgpack-ours': `export { make } from ${JSON.stringify(join(HERE, 'msgpack-ours.ts'))};
      export { runMsgpackPlan as runPlan } from ${codecModule};`,
    'msgpack-library': `import { make as adapter } from ${JSON.stringify(join(HERE, 'msgpack-library.ts'))};
      export const make = () => adapter(Symbol('unknown'));
      export { runMsgpackPlan as runPlan } from ${codecModule};`,
  };
  type Variant = keyof typeof entries;
  for (const [name, contents] of Object.entries(entries)) {
    await build({
      stdin: { contents, resolveDir: HERE, loader: 'ts', sourcefile: `entry-${name}.ts` },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      minify: true,
      outfile: join(tmp, `${name}.cjs`),
      logLevel: 'error',
    });
  }
  // The child: reads its part of the work first (not timed), then loads the codec and handles
  // the first message (timed: start), then does that part's work (CPU: cold plan).
  writeFileSync(
    join(tmp, 'child.cjs'),
    `const { readFileSync } = require('node:fs');
const [bundle, kind, part] = process.argv.slice(2);
const work = JSON.parse(readFileSync(${JSON.stringify(join(tmp, 'work.json'))}, 'utf8'), (_, v) =>
  v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data) : v)[part];
const t0 = performance.now();
const mod = require(bundle);
const codec = mod.make();
if (kind === 'proto') {
  const first = work.proto.rpcs[0];
  codec.decode(first.method, first.request);
  codec.encodeFramed(first.method, first.response);
} else {
  codec.decode(work.values.reads[0], work.values.type);
  if (work.values.writes.length > 0) codec.encode(work.values.writes[0], work.values.type);
}
const start = performance.now() - t0;
const since = process.cpuUsage();
const t1 = performance.now();
mod.runPlan(codec, kind === 'proto' ? work.proto : work.values);
const wall = performance.now() - t1;
const u = process.cpuUsage(since);
process.stdout.write(JSON.stringify({ start, plan: (u.user + u.system) / 1000, wall }));
`,
  );
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  const partNames = ['validation', 'walk'] as const;
  const fresh = {
    start: {} as Record<Variant, number[]>,
    cold: {} as Record<Variant, Record<(typeof partNames)[number], number[]>>,
    wall: {} as Record<Variant, Record<(typeof partNames)[number], number[]>>,
  };
  const variants = Object.keys(entries) as Variant[];
  for (const v of variants) {
    fresh.start[v] = [];
    fresh.cold[v] = { validation: [], walk: [] };
    fresh.wall[v] = { validation: [], walk: [] };
  }
  for (let r = 0; r < STARTS; r++) {
    for (const v of r % 2 ? [...variants].reverse() : variants) {
      for (const part of partNames) {
        const out = spawnSync(
          process.execPath,
          [join(tmp, 'child.cjs'), join(tmp, `${v}.cjs`), v.startsWith('proto') ? 'proto' : 'msgpack', part],
          { env, encoding: 'utf8' },
        );
        if (out.status !== 0) throw new Error(`${v}: the child failed: ${out.stderr}`);
        const { start, plan, wall } = JSON.parse(out.stdout) as { start: number; plan: number; wall: number };
        fresh.start[v].push(start);
        fresh.cold[v][part].push(plan);
        fresh.wall[v][part].push(wall);
      }
    }
  }
  const start = (v: Variant) => median(fresh.start[v]);
  /** The validating process's cold work plus the plan-walking process's. */
  const cold = (v: Variant) => median(fresh.cold[v].validation) + median(fresh.cold[v].walk);
  /** The same in wall time: CPU counts V8's compiler threads too, which may run beside the main one. */
  const coldWall = (v: Variant) => median(fresh.wall[v].validation) + median(fresh.wall[v].walk);

  // --- the table and the verdicts ---
  const load = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const f = (ms: number) => ms.toFixed(2);
  process.stdout.write(
    `\nbench/codecs: ${N} rigbox_workspace_ai_config (managed), a plan's ${work.proto.rpcs.length} RPCs ` +
      `and ${work.values.reads.length} + ${work.values.writes.length} values; node ${process.version}; ` +
      `starts: median of ${2 * STARTS} fresh processes; warm: median of ${ROUNDS} x ${PLANS_PER_SAMPLE} plans\n` +
      `threshold (set before measuring): keep ours if it saves >= ${START_THRESHOLD_MS} ms per start, or >= ` +
      `${PLAN_THRESHOLD_MS} ms per plan (10% of ${PLAN_REFERENCE_MS} ms, hashicorp/null's N=100 tofu plan in ` +
      `bench/provider) counting ${STARTS_PER_PLAN} starts + the plan's work\n${load}\n\n`,
  );
  const rows: string[][] = [
    [
      'codec',
      'ours vs library',
      'start ms',
      'cold plan CPU ms',
      'cold plan wall ms',
      'warm plan CPU ms',
      'saving/start',
      'saving/plan',
      'verdict',
    ],
  ];
  const row = (
    codec: string,
    ours: Variant,
    library: Variant,
    libraryName: string,
    warmFig: Record<'ours' | 'library', number>,
    diagnostic = false,
  ) => {
    const startSaving = start(library) - start(ours);
    const planWorkSaving = Math.max(cold(library) - cold(ours), warmFig.library - warmFig.ours);
    const planSaving = STARTS_PER_PLAN * startSaving + planWorkSaving;
    const keep = startSaving >= START_THRESHOLD_MS || planSaving >= PLAN_THRESHOLD_MS;
    rows.push([
      codec,
      `ours vs ${libraryName}`,
      `${f(start(ours))} vs ${f(start(library))}`,
      `${f(cold(ours))} vs ${f(cold(library))}`,
      `${f(coldWall(ours))} vs ${f(coldWall(library))}`,
      `${f(warmFig.ours)} vs ${f(warmFig.library)}`,
      `${f(startSaving)} ms`,
      `${f(planSaving)} ms`,
      diagnostic ? '(diagnostic)' : keep ? 'keep ours' : 'switch to the library',
    ]);
  };
  const warmOf = (library: number) => ({ ours: warmProto.ours, library });
  row(
    'protobuf',
    'proto-ours',
    'proto-protobufjs-static',
    'protobufjs (pbjs static code)',
    warmOf(warmProto.static),
  );
  row(
    'protobuf',
    'proto-ours',
    'proto-protobufjs',
    'protobufjs (light, JSON descriptor)',
    warmOf(warmProto.reflection),
    true,
  );
  row(
    'protobuf',
    'proto-ours',
    'proto-protobufjs-parse',
    'protobufjs (parses .proto at start)',
    warmOf(warmProto.reflection),
    true,
  );
  row('cty msgpack', 'msgpack-ours', 'msgpack-library', '@msgpack/msgpack + typing pass', warmMsgpack);
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')}\n`);
  process.stdout.write(
    `\nsaving/plan = ${STARTS_PER_PLAN} x saving/start + the larger of the cold and warm plan savings. ` +
      'Diagnostics, without a verdict: the cold plan wall time, and protobufjs loaded by reflection (the ' +
      'two rows after its generated code, which is what a careful author ships for start time).\n',
  );
}
