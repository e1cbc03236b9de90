import { decodeDynamic, encodeDynamic } from '../../tfplugin/src/values/values.js';
import type { MsgpackCodec } from './codec.js';

/** The SDK's own cty msgpack codec, as tfplugin/src/server/server.ts uses it. */
export function make(): MsgpackCodec {
  return {
    decode: (msgpack, type) => decodeDynamic({ msgpack }, type),
    encode: (value, type) => encodeDynamic(value, type).msgpack,
  };
}
