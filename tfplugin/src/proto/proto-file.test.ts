import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  BROKER_START_STREAM,
  CONTROLLER_SHUTDOWN,
  HEALTH_CHECK,
  type Method,
  PROVIDER_METHODS,
} from './messages.js';
import { encode, type FieldType, type MessageType } from './protobuf.js';

/**
 * The hand-written descriptors in messages.ts against the .proto files in tfplugin/proto, parsed
 * by protobufjs: every field the codec declares must exist in the protocol under the same number,
 * with the same type and repeated-ness, and every path the server answers must be an RPC there.
 * A wrong number here would make Terraform silently drop a field (or read it as another one).
 */
const root = new protobuf.Root();
for (const file of ['tfplugin6.proto', 'go-plugin.proto', 'health.proto']) {
  protobuf.parse(readFileSync(new URL(`../../proto/${file}`, import.meta.url), 'utf8'), root);
}
root.resolveAll();

function rpcOf(path: string): protobuf.Method {
  const match = /^\/([\w.]+)\/(\w+)$/.exec(path);
  if (!match) throw new Error(`not a gRPC path: ${path}`);
  const [, service, name] = match as unknown as [string, string, string];
  const rpc = root.lookupService(service).methods[name];
  if (!rpc) throw new Error(`${path}: no rpc ${name} in service ${service}`);
  rpc.resolve();
  return rpc;
}

/** Compares one hand-coded message with the .proto's, recursing into message fields once each. */
function compareMessage(
  ours: MessageType,
  theirs: protobuf.Type,
  where: string,
  seen: Set<MessageType>,
): string[] {
  if (seen.has(ours)) return [];
  seen.add(ours);
  const problems: string[] = [];
  for (const field of ours.fields) {
    const at = `${where}.${field.name}`;
    // protobufjs names fields in camelCase, as messages.ts does.
    const proto = theirs.fields[field.name];
    if (!proto) {
      problems.push(`${at}: no such field in ${theirs.fullName}`);
      continue;
    }
    if (proto.id !== field.no) problems.push(`${at}: number ${field.no}, the protocol says ${proto.id}`);
    if (Boolean(field.repeated) !== proto.repeated) {
      problems.push(`${at}: repeated ${Boolean(field.repeated)}, the protocol says ${proto.repeated}`);
    }
    if (typeof field.type === 'object' && 'map' in field.type) {
      if (!(proto instanceof protobuf.MapField)) {
        problems.push(`${at}: a map here, not in the protocol`);
        continue;
      }
      const [key, value] = field.type.map;
      if (key !== proto.keyType) problems.push(`${at}: map key ${key}, the protocol says ${proto.keyType}`);
      problems.push(...compareType(value, proto, at, seen));
    } else if (proto instanceof protobuf.MapField) {
      problems.push(`${at}: the protocol has a map here`);
    } else {
      problems.push(...compareType(field.type, proto, at, seen));
    }
  }
  return problems;
}

/** The type of a field (or of a map's values): scalar, enum or message. */
function compareType(ours: FieldType, proto: protobuf.Field, at: string, seen: Set<MessageType>): string[] {
  const resolved = proto.resolvedType;
  if (typeof ours === 'object' && 'message' in ours) {
    if (!(resolved instanceof protobuf.Type)) return [`${at}: a message here, ${proto.type} in the protocol`];
    return compareMessage(ours, resolved, at, seen);
  }
  if (ours === 'enum') {
    return resolved instanceof protobuf.Enum ? [] : [`${at}: an enum here, ${proto.type} in the protocol`];
  }
  if (typeof ours !== 'string') return [`${at}: a map where a value type belongs`];
  return resolved === null && proto.type === ours
    ? []
    : [`${at}: ${ours} here, ${proto.type} in the protocol`];
}

function compareMethod(method: Method): string[] {
  const rpc = rpcOf(method.path);
  const problems: string[] = [];
  if (rpc.requestStream || rpc.responseStream)
    problems.push(`${method.path}: a streaming RPC in the protocol`);
  const seen = new Set<MessageType>();
  const { resolvedRequestType: request, resolvedResponseType: response } = rpc;
  if (!request || !response) throw new Error(`${method.path}: unresolved types`);
  problems.push(...compareMessage(method.request, request, `${method.path} request`, seen));
  problems.push(...compareMessage(method.response, response, `${method.path} response`, seen));
  return problems;
}

describe('messages.ts against tfplugin/proto', () => {
  const methods: [string, Method][] = [
    ...PROVIDER_METHODS,
    ['grpc.health.v1 Check', HEALTH_CHECK],
    ['go-plugin Shutdown', CONTROLLER_SHUTDOWN],
  ];

  it.each(methods)('%s: every field has the protocol number, type and repeated-ness', (_, method) => {
    expect(compareMethod(method)).toEqual([]);
  });

  it('the Provider service in the .proto lists exactly the RPCs the codec has', () => {
    const served = [...PROVIDER_METHODS.values()].map((m) => m.path).sort();
    const listed = Object.keys(root.lookupService('tfplugin6.Provider').methods)
      .map((name) => `/tfplugin6.Provider/${name}`)
      .sort();
    expect(listed).toEqual(served);
  });

  it("go-plugin's broker stream is a bidirectional stream of ConnInfo", () => {
    const rpc = rpcOf(BROKER_START_STREAM);
    expect([rpc.requestStream, rpc.responseStream, rpc.requestType, rpc.responseType]).toEqual([
      true,
      true,
      'ConnInfo',
      'ConnInfo',
    ]);
  });

  it('the comparison catches a wrong number, type and repeated-ness', () => {
    const original = PROVIDER_METHODS.get('ReadResource')!;
    const fields = original.response.fields;
    const altered = (i: number, change: object): Method => ({
      ...original,
      response: { ...original.response, fields: fields.map((f, j) => (j === i ? { ...f, ...change } : f)) },
    });
    const newState = fields.findIndex((f) => f.name === 'newState');
    const priv = fields.findIndex((f) => f.name === 'private');
    const diagnostics = fields.findIndex((f) => f.name === 'diagnostics');
    expect(compareMethod(altered(newState, { no: 5 }))).toEqual([
      '/tfplugin6.Provider/ReadResource response.newState: number 5, the protocol says 1',
    ]);
    expect(compareMethod(altered(priv, { type: 'string' }))).toEqual([
      '/tfplugin6.Provider/ReadResource response.private: string here, bytes in the protocol',
    ]);
    expect(compareMethod(altered(diagnostics, { repeated: false }))).toEqual([
      '/tfplugin6.Provider/ReadResource response.diagnostics: repeated false, the protocol says true',
    ]);
  });
});

/**
 * A value with every declared field set to something other than its zero value (so that each
 * reaches the wire), one member per oneof, recursion cut off after a few levels.
 */
function sample(ours: MessageType, theirs: protobuf.Type, depth: number): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  const oneofsUsed = new Set<string>();
  for (const field of ours.fields) {
    const proto = theirs.fields[field.name]!;
    if (proto.partOf) {
      if (oneofsUsed.has(proto.partOf.name)) continue;
      oneofsUsed.add(proto.partOf.name);
    }
    const one = (type: FieldType, p: protobuf.Field): unknown => {
      if (typeof type === 'object' && 'message' in type) {
        return depth > 0 ? sample(type, p.resolvedType as protobuf.Type, depth - 1) : {};
      }
      if (typeof type === 'object') throw new Error('nested map');
      return {
        string: `${field.name}-text`,
        bytes: Buffer.from(field.name),
        bool: true,
        int64: 300,
        uint32: 7,
        enum: 2,
      }[type];
    };
    if (typeof field.type === 'object' && 'map' in field.type) {
      value[field.name] = { first: one(field.type.map[1], proto), second: one(field.type.map[1], proto) };
    } else if (field.repeated) {
      value[field.name] = [one(field.type, proto), one(field.type, proto)];
    } else {
      value[field.name] = one(field.type, proto);
    }
  }
  return value;
}

describe('the codec against protobufjs on the wire', () => {
  it.each([...PROVIDER_METHODS])('%s: our bytes are the bytes protobufjs writes', (_, method) => {
    const rpc = rpcOf(method.path);
    for (const [ours, theirs] of [
      [method.request, rpc.resolvedRequestType!],
      [method.response, rpc.resolvedResponseType!],
    ] as const) {
      const value = sample(ours, theirs, 3);
      const reference = Buffer.from(theirs.encode(theirs.fromObject(value)).finish());
      expect(encode(ours, value).toString('hex'), ours.message).toBe(reference.toString('hex'));
    }
  });
});
