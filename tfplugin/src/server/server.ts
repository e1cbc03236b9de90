import { randomBytes } from 'node:crypto';
import { unlinkSync, writeSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Diagnostic, error, hasError, toProtoDiagnostic } from '../framework/diagnostics.js';
import type { ClientCapabilities, ObjectValue, Provider, Resource } from '../framework/framework.js';
import { blockType, type SchemaSpec, toProtoSchema, writeOnlyAttributes } from '../framework/schema.js';
import {
  BROKER_START_STREAM,
  CONTROLLER_SHUTDOWN,
  HEALTH_CHECK,
  PROVIDER_METHODS,
} from '../proto/messages.js';
import { encode } from '../proto/protobuf.js';
import {
  type CtyType,
  type DynamicValue,
  decodeDynamic,
  encodeDynamic,
  UNKNOWN,
  type Value,
} from '../values/values.js';
import { createServerCertificate } from '../wire/certificate.js';
import { createGrpcServer as createOwnGrpcServer } from '../wire/grpc.js';
import type { GrpcServerOptions, UnaryHandler, UnaryRoute } from '../wire/grpc-common.js';

/** go-plugin's handshake cookie for Terraform providers: a fixed value, not a secret. */
const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
const CORE_PROTOCOL_VERSION = 1;
const APP_PROTOCOL_VERSION = 6;

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const capabilitiesOf = (
  c: { writeOnlyAttributesAllowed?: boolean } | null | undefined,
): ClientCapabilities => ({
  writeOnlyAttributesAllowed: c?.writeOnlyAttributesAllowed === true,
});

/** Sets computed attributes the config leaves null to unknown, recursively through single blocks. */
function unknownComputed(
  spec: SchemaSpec['block'],
  config: ObjectValue | null,
  value: ObjectValue,
): ObjectValue {
  const out: ObjectValue = { ...value };
  for (const [name, a] of Object.entries(spec.attributes)) {
    if (a.computed && (config?.[name] ?? null) === null) out[name] = UNKNOWN;
  }
  return out;
}

/** Write-only attributes never reach state or plan: core refuses a non-null one. */
function withoutWriteOnly(spec: SchemaSpec, value: ObjectValue | null): ObjectValue | null {
  if (!value) return value;
  const out = { ...value };
  for (const name of writeOnlyAttributes(spec.block)) out[name] = null;
  return out;
}

/**
 * Serves a provider over Terraform plugin protocol 6: the go-plugin handshake on stdout, gRPC
 * with AutoMTLS, the health and controller services. Every RPC answers with diagnostics; an
 * unexpected exception becomes an "Internal Provider Error" diagnostic, never a crash.
 */
/**
 * The GetProviderSchema answer, encoded. The bundle carries it encoded at build time (see
 * scripts/bundle.mjs): the one call of the process Terraform starts only to read the schema then
 * costs no encoding, cold, of the largest message a provider sends.
 */
export function providerSchemaAnswer<Client>(provider: Provider<Client>): Buffer {
  const method = PROVIDER_METHODS.get('GetProviderSchema');
  if (!method) throw new Error('GetProviderSchema is not a known method');
  return encode(method.response, schemaAnswer(provider));
}

const SERVER_CAPABILITIES = {
  planDestroy: false,
  getProviderSchemaOptional: true,
  moveResourceState: false,
};

function schemaAnswer<Client>(provider: Provider<Client>): Record<string, unknown> {
  return {
    provider: toProtoSchema(provider.schema),
    resourceSchemas: Object.fromEntries(provider.resources.map((r) => [r.typeName, toProtoSchema(r.schema)])),
    dataSourceSchemas: Object.fromEntries(
      provider.dataSources.map((d) => [d.typeName, toProtoSchema(d.schema)]),
    ),
    serverCapabilities: SERVER_CAPABILITIES,
  };
}

export async function serve<Client>(
  provider: Provider<Client>,
  log: Logger,
  /** providerSchemaAnswer(provider), when it was worked out ahead. */
  encodedSchema?: Buffer,
): Promise<void> {
  const type = provider.address.split('/').pop() ?? provider.address;
  const binary = `terraform-provider-${type}`;
  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(
      `This is a Terraform/OpenTofu provider plugin (${provider.address}). It is not meant to be run by hand:\n` +
        'declare it in required_providers and run `tofu init` / `terraform init`; see the README.\n',
    );
    process.exit(1);
  }
  const offered = (process.env.PLUGIN_PROTOCOL_VERSIONS ?? String(APP_PROTOCOL_VERSION))
    .split(',')
    .map((v) => v.trim());
  if (!offered.includes(String(APP_PROTOCOL_VERSION))) {
    process.stderr.write(
      `${binary} speaks plugin protocol ${APP_PROTOCOL_VERSION}; this client offers ${offered.join(', ')}. Use Terraform >= 1.0 or OpenTofu.\n`,
    );
    process.exit(1);
  }

  const resources = new Map(provider.resources.map((r) => [r.typeName, r]));
  const dataSources = new Map(provider.dataSources.map((d) => [d.typeName, d]));
  const providerType = blockType(provider.schema.block);
  let client: Client | undefined;

  const diag = (diagnostics: readonly Diagnostic[]) => diagnostics.map(toProtoDiagnostic);
  const internal = (rpc: string, err: unknown) => {
    log.error('rpc failed', {
      rpc,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
    return [
      toProtoDiagnostic(
        error(
          'Internal Provider Error',
          `${binary} hit an unexpected error in ${rpc}. This is a bug; the provider log (TF_LOG=debug) has details.`,
        ),
      ),
    ];
  };

  function rpc<Req, Res>(
    name: string,
    diagField: string,
    handler: (req: Req) => Promise<Res> | Res,
  ): UnaryHandler {
    return (request) => {
      log.debug('rpc', { rpc: name });
      return Promise.resolve()
        .then(() => handler(request as Req))
        .then(
          (res) => res as Record<string, unknown> | Uint8Array,
          (err) => ({ [diagField]: internal(name, err) }),
        );
    };
  }

  function resourceOf(typeName: string): Resource<Client> {
    const r = resources.get(typeName);
    if (!r) throw new Error(`unknown resource type ${typeName}`);
    return r;
  }
  // Every value crossing the wire is typed by its schema; build each schema's type once.
  const types = new WeakMap<SchemaSpec, CtyType>();
  const typeOf = (spec: SchemaSpec): CtyType => {
    let type = types.get(spec);
    if (!type) {
      type = blockType(spec.block);
      types.set(spec, type);
    }
    return type;
  };
  const decodeObj = (dv: DynamicValue | null | undefined, spec: SchemaSpec) =>
    decodeDynamic(dv, typeOf(spec)) as ObjectValue | null;
  const encodeObj = (v: ObjectValue | null, spec: SchemaSpec) => encodeDynamic(v as Value, typeOf(spec));
  const notConfigured = [
    error(
      'Provider Not Configured',
      `The ${type} provider was not configured before this call; this happens when its configuration has errors.`,
    ),
  ];

  const handlers: Record<string, UnaryHandler> = {
    GetMetadata: rpc('GetMetadata', 'diagnostics', () => ({
      serverCapabilities: SERVER_CAPABILITIES,
      resources: provider.resources.map((r) => ({ typeName: r.typeName })),
      dataSources: provider.dataSources.map((d) => ({ typeName: d.typeName })),
    })),
    GetProviderSchema: rpc('GetProviderSchema', 'diagnostics', () => encodedSchema ?? schemaAnswer(provider)),
    ValidateProviderConfig: rpc('ValidateProviderConfig', 'diagnostics', (req: { config: DynamicValue }) => ({
      diagnostics: diag(provider.validate(decodeDynamic(req.config, providerType) as ObjectValue)),
    })),
    ConfigureProvider: rpc(
      'ConfigureProvider',
      'diagnostics',
      async (req: { config: DynamicValue; terraformVersion: string }) => {
        const res = await provider.configure(
          decodeDynamic(req.config, providerType) as ObjectValue,
          req.terraformVersion,
        );
        if (res.client && !hasError(res.diagnostics)) {
          client = res.client;
          for (const r of provider.resources) r.configure(res.client);
          for (const d of provider.dataSources) d.configure(res.client);
        }
        return { diagnostics: diag(res.diagnostics) };
      },
    ),
    ValidateResourceConfig: rpc(
      'ValidateResourceConfig',
      'diagnostics',
      (req: {
        typeName: string;
        config: DynamicValue;
        clientCapabilities?: { writeOnlyAttributesAllowed?: boolean };
      }) => {
        const r = resourceOf(req.typeName);
        const config = decodeObj(req.config, r.schema) ?? {};
        return { diagnostics: diag(r.validate(config, capabilitiesOf(req.clientCapabilities))) };
      },
    ),
    ValidateDataResourceConfig: rpc(
      'ValidateDataResourceConfig',
      'diagnostics',
      (req: { typeName: string; config: DynamicValue }) => {
        const d = dataSources.get(req.typeName);
        if (!d) throw new Error(`unknown data source ${req.typeName}`);
        return { diagnostics: diag(d.validate(decodeDynamic(req.config, typeOf(d.schema)) as ObjectValue)) };
      },
    ),
    UpgradeResourceState: rpc(
      'UpgradeResourceState',
      'diagnostics',
      (req: { typeName: string; version: number; rawState: { json?: Buffer } }) => {
        const r = resourceOf(req.typeName);
        // One schema version so far: the stored JSON already has today's shape.
        const state = decodeDynamic(
          { json: req.rawState?.json ?? null },
          typeOf(r.schema),
        ) as ObjectValue | null;
        if (state && client) r.upgraded?.(state);
        return { upgradedState: encodeObj(withoutWriteOnly(r.schema, state), r.schema) };
      },
    ),
    ReadResource: rpc(
      'ReadResource',
      'diagnostics',
      async (req: { typeName: string; currentState: DynamicValue; private: Buffer }) => {
        const r = resourceOf(req.typeName);
        const current = decodeObj(req.currentState, r.schema);
        if (!current) return { newState: encodeObj(null, r.schema), private: req.private };
        if (!client)
          return { newState: req.currentState, private: req.private, diagnostics: diag(notConfigured) };
        const res = await r.read(current, req.private ?? Buffer.alloc(0));
        return {
          newState: encodeObj(withoutWriteOnly(r.schema, res.state), r.schema),
          private: res.private ?? req.private,
          diagnostics: diag(res.diagnostics ?? []),
        };
      },
    ),
    PlanResourceChange: rpc(
      'PlanResourceChange',
      'diagnostics',
      async (req: {
        typeName: string;
        priorState: DynamicValue;
        proposedNewState: DynamicValue;
        config: DynamicValue;
        priorPrivate: Buffer;
      }) => {
        const r = resourceOf(req.typeName);
        const prior = decodeObj(req.priorState, r.schema);
        const proposed = decodeObj(req.proposedNewState, r.schema);
        const config = decodeObj(req.config, r.schema);
        if (!proposed || !config) {
          return { plannedState: encodeObj(null, r.schema), plannedPrivate: req.priorPrivate };
        }
        const planned = prior ? proposed : unknownComputed(r.schema.block, config, proposed);
        const res = await r.plan({
          prior,
          planned,
          config,
          priorPrivate: req.priorPrivate ?? Buffer.alloc(0),
        });
        return {
          plannedState: encodeObj(withoutWriteOnly(r.schema, res.planned), r.schema),
          requiresReplace: (res.requiresReplace ?? []).map((path) => ({
            steps: path.map((s) => (typeof s === 'number' ? { elementKeyInt: s } : { attributeName: s })),
          })),
          plannedPrivate: res.plannedPrivate ?? req.priorPrivate,
          diagnostics: diag(res.diagnostics ?? []),
        };
      },
    ),
    ApplyResourceChange: rpc(
      'ApplyResourceChange',
      'diagnostics',
      async (req: {
        typeName: string;
        priorState: DynamicValue;
        plannedState: DynamicValue;
        config: DynamicValue;
        plannedPrivate: Buffer;
      }) => {
        const r = resourceOf(req.typeName);
        if (!client) return { newState: req.priorState, diagnostics: diag(notConfigured) };
        const prior = decodeObj(req.priorState, r.schema);
        const planned = decodeObj(req.plannedState, r.schema);
        const config = decodeObj(req.config, r.schema) ?? {};
        const privateData = req.plannedPrivate ?? Buffer.alloc(0);
        if (!planned) {
          const res = prior ? await r.delete(prior, privateData) : {};
          const failed = hasError(res.diagnostics ?? []);
          return {
            // A failed delete keeps the object in state.
            newState: encodeObj(failed ? withoutWriteOnly(r.schema, prior) : null, r.schema),
            diagnostics: diag(res.diagnostics ?? []),
          };
        }
        const res = prior
          ? await r.update(prior, planned, config, privateData)
          : await r.create(planned, config);
        const failed = hasError(res.diagnostics ?? []);
        // On failure keep what was there before, so nothing half-applied is recorded.
        const state = failed && !res.state ? prior : res.state;
        return {
          newState: encodeObj(withoutWriteOnly(r.schema, state), r.schema),
          private: res.private ?? privateData,
          diagnostics: diag(res.diagnostics ?? []),
        };
      },
    ),
    ImportResourceState: rpc(
      'ImportResourceState',
      'diagnostics',
      async (req: { typeName: string; id: string }) => {
        const r = resourceOf(req.typeName);
        if (!client) return { diagnostics: diag(notConfigured) };
        const res = await r.importState(req.id);
        if (!res.state) return { diagnostics: diag(res.diagnostics ?? []) };
        return {
          importedResources: [
            {
              typeName: req.typeName,
              state: encodeObj(withoutWriteOnly(r.schema, res.state), r.schema),
              private: res.private ?? Buffer.alloc(0),
            },
          ],
          diagnostics: diag(res.diagnostics ?? []),
        };
      },
    ),
    ReadDataSource: rpc(
      'ReadDataSource',
      'diagnostics',
      async (req: { typeName: string; config: DynamicValue }) => {
        const d = dataSources.get(req.typeName);
        if (!d) throw new Error(`unknown data source ${req.typeName}`);
        if (!client) return { diagnostics: diag(notConfigured) };
        const res = await d.read(decodeDynamic(req.config, typeOf(d.schema)) as ObjectValue);
        return {
          state: encodeDynamic((res.state ?? null) as Value, typeOf(d.schema)),
          diagnostics: diag(res.diagnostics ?? []),
        };
      },
    ),
    // StopProvider reports a failure in its `Error` field, not in diagnostics.
    StopProvider: rpc('StopProvider', 'Error', () => ({ Error: '' })),
  };

  const unary = new Map<string, UnaryRoute>();
  for (const [name, method] of PROVIDER_METHODS) {
    const handler = handlers[name];
    if (handler) unary.set(method.path, { method, handler });
  }
  unary.set(HEALTH_CHECK.path, { method: HEALTH_CHECK, handler: async () => ({ status: 1 }) });
  unary.set(CONTROLLER_SHUTDOWN.path, {
    method: CONTROLLER_SHUTDOWN,
    handler: async () => {
      // Should the answer never get written (a stuck socket), leave all the same.
      setTimeout(() => process.exit(0), 500).unref();
      return {};
    },
    // The client waits for the answer and then for us to exit: as soon as the answer is out.
    // Terraform stops a provider three or four times per command, and it waits each time.
    afterAnswer: () => process.exit(0),
  });

  const clientCert = process.env.PLUGIN_CLIENT_CERT;
  let certField = '';
  let tls: { certPem: string; keyPem: string; clientCertPem: string } | undefined;
  if (clientCert) {
    const cert = createServerCertificate();
    tls = { certPem: cert.certPem, keyPem: cert.keyPem, clientCertPem: clientCert };
    // Go's RawStdEncoding: base64 without padding.
    certField = cert.der.toString('base64').replace(/=+$/, '');
  }
  const server = (await grpcServerFactory())({
    ...(tls ? { tls } : {}),
    unary,
    heldStreams: new Set([BROKER_START_STREAM]),
    onError: (path, err) =>
      log.error('grpc call failed', { path, error: err instanceof Error ? err.message : String(err) }),
  });
  const address = await listen(server);
  // A listening server's own errors (say, out of file descriptors on accept) are logged, not thrown.
  server.on('error', (err) =>
    log.error('provider server error', { error: err instanceof Error ? err.message : String(err) }),
  );
  // Before the handshake, which is the client's cue that it may signal us: a SIGTERM must end the
  // process through 'exit' (and so remove the socket), never by the default action.
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  // Terraform sends SIGINT to the whole process group on Ctrl-C; it then asks us to stop via the
  // protocol, so ignore the signal itself rather than die mid-apply.
  process.on('SIGINT', () => {});
  // Straight to fd 1: process.stdout would first build a stream around it, a few milliseconds of
  // start-up for the one line go-plugin reads.
  writeSync(1, `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|${address}|grpc|${certField}\n`);
}

/**
 * The gRPC server's HTTP/2 layer, chosen by TFPLUGIN_WIRE, read once at start: `own` (http2.ts and
 * hpack.ts; the default) or `node` (node:http2, loaded only then). bench/provider compares them.
 */
async function grpcServerFactory(): Promise<(options: GrpcServerOptions) => Server> {
  const wire = process.env.TFPLUGIN_WIRE || 'own';
  if (wire === 'own') return createOwnGrpcServer;
  if (wire === 'node') return (await import('../wire/grpc-node.js')).createGrpcServer;
  process.stderr.write(`TFPLUGIN_WIRE must be "own" or "node", not "${wire.slice(0, 20)}".\n`);
  process.exit(1);
}

/** Longest unix socket path the kernel takes (sun_path is 108 bytes with its terminating NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * Listens where go-plugin's own servers do: on a unix socket in PLUGIN_UNIX_SOCKET_DIR or the
 * temporary directory (cheaper than loopback TCP for the few hundred calls of a plan, and no
 * address lookup at start), and on loopback TCP where there are no unix sockets or the path
 * would be too long. Returns the handshake's network and address fields.
 */
async function listen(server: Server): Promise<string> {
  const dir = process.env.PLUGIN_UNIX_SOCKET_DIR || tmpdir();
  const path = join(dir, `plugin${randomBytes(6).toString('hex')}`);
  if (process.platform !== 'win32' && Buffer.byteLength(path) <= MAX_SOCKET_PATH) {
    const listening = await new Promise<boolean>((ok) => {
      server.once('error', () => ok(false));
      server.listen(path, () => ok(true));
    });
    if (listening) {
      // The socket file goes when the process exits: after Shutdown, on SIGTERM, on an error exit.
      process.on('exit', () => {
        try {
          unlinkSync(path);
        } catch {}
      });
      return `unix|${path}`;
    }
  }
  const port = await new Promise<number>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok((server.address() as AddressInfo).port));
  });
  return `tcp|127.0.0.1:${port}`;
}
