import type * as Protobuf from 'protobufjs';
import type { ProtoCodec } from './codec.js';

/**
 * protobufjs doing the SDK's protobuf work, loading tfplugin6 with `load` (from the JSON
 * descriptor with protobufjs/light, or parsed from tfplugin6.proto with the full build).
 * int64 fields decode as JS numbers (no long.js), as the SDK's own codec reads them: the only
 * int64 a provider reads is a schema version. Messages are read as protobufjs decodes them
 * (field access on the decoded message, no toObject copy) and answers encoded from the plain
 * objects the server builds.
 */
export function make(
  { util, configure }: { util: typeof Protobuf.util; configure: () => void },
  load: () => Protobuf.Root,
): ProtoCodec {
  // Before the types are loaded: a field decides at its creation whether it reads a Long.
  util.Long = undefined as unknown as typeof util.Long;
  configure();
  const root = load();
  const types = new Map<string, { request: Protobuf.Type; response: Protobuf.Type }>();
  const typesOf = (name: string) => {
    let t = types.get(name);
    if (!t) {
      t = {
        request: root.lookupType(`tfplugin6.${name}.Request`),
        response: root.lookupType(`tfplugin6.${name}.Response`),
      };
      types.set(name, t);
    }
    return t;
  };
  return {
    decode: (name, message) => typesOf(name).request.decode(message) as unknown as Record<string, unknown>,
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
