import type * as Protobuf from 'protobufjs';
import type { ProtoCodec } from './codec.js';

/** A message type's codec as protobufjs offers it, by reflection (Type) or as generated code. */
export interface Coder {
  decode(message: Uint8Array): unknown;
  encode(value: object): { finish(): Uint8Array };
}

/**
 * protobufjs doing the SDK's protobuf work. `load` loads tfplugin6 and returns a lookup of its
 * message types by full name: from the JSON descriptor with protobufjs/light, parsed from
 * tfplugin6.proto with the full build, or the code `pbjs -t static-module` generates.
 * int64 fields decode as JS numbers (no long.js), as the SDK's own codec reads them: the only
 * int64 a provider reads is a schema version. Messages are read as protobufjs decodes them
 * (field access on the decoded message, no toObject copy) and answers encoded from the plain
 * objects the server builds.
 */
export function make(
  { util, configure }: { util: typeof Protobuf.util; configure: () => void },
  load: () => (fullName: string) => Coder,
): ProtoCodec {
  // Before the types are loaded: a field decides at its creation whether it reads a Long.
  util.Long = undefined as unknown as typeof util.Long;
  configure();
  const lookup = load();
  const types = new Map<string, { request: Coder; response: Coder }>();
  const typesOf = (name: string) => {
    let t = types.get(name);
    if (!t) {
      t = { request: lookup(`tfplugin6.${name}.Request`), response: lookup(`tfplugin6.${name}.Response`) };
      types.set(name, t);
    }
    return t;
  };
  return {
    decode: (name, message) => typesOf(name).request.decode(message) as Record<string, unknown>,
    encodeFramed(name, value) {
      const message = typesOf(name).response.encode(value).finish();
      // gRPC's five-byte frame header goes in front: a second buffer and a copy.
      const out = Buffer.allocUnsafe(5 + message.length);
      out[0] = 0;
      out.writeUInt32BE(message.length, 1);
      out.set(message, 5);
      return out;
    },
  };
}

/** The lookup into the tree of classes `pbjs -t static-module` generates. */
export const staticLookup =
  (root: Record<string, unknown>) =>
  (fullName: string): Coder =>
    fullName.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root) as Coder;
