import { PROVIDER_METHODS } from '../../tfplugin/src/proto/messages.js';
import { decode, encodeAfter } from '../../tfplugin/src/proto/protobuf.js';
import type { ProtoCodec } from './codec.js';

/** The SDK's own protobuf codec, as tfplugin/src/wire/grpc-common.ts uses it. */
export function make(): ProtoCodec {
  const method = (name: string) => {
    const m = PROVIDER_METHODS.get(name);
    if (!m) throw new Error(`no method ${name}`);
    return m;
  };
  return {
    decode: (name, message) => decode(method(name).request, message as Buffer),
    encodeFramed(name, value) {
      const out = encodeAfter(5, method(name).response, value);
      out[0] = 0;
      out.writeUInt32BE(out.length - 5, 1);
      return out;
    },
  };
}
