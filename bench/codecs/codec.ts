import type { CtyType, Value } from '../../tfplugin/src/values/values.js';

/**
 * What each side of bench/codecs does, so that ours and the library's run the same work. Each
 * variant module exports `make` and imports only its own codec, so that a fresh process that
 * loads its bundle pays for that codec alone (see run.ts).
 */
export interface ProtoCodec {
  /** A request, unframed, into the object the server's handler reads. */
  decode(method: string, message: Uint8Array): Record<string, unknown>;
  /** A handler's answer, encoded with the gRPC frame header in front, as the server sends it. */
  encodeFramed(method: string, value: Record<string, unknown>): Uint8Array;
}

export interface MsgpackCodec {
  decode(msgpack: Uint8Array, type: CtyType): Value;
  encode(value: Value, type: CtyType): Uint8Array;
}

/** The methods of the plan walk that run once per resource. */
export const PLAN_METHODS = [
  'ValidateResourceConfig',
  'UpgradeResourceState',
  'ReadResource',
  'PlanResourceChange',
] as const;

/** One plan's protobuf messages: each request as the provider receives it, each answer it sends. */
export interface ProtoPlan {
  readonly rpcs: readonly { method: string; request: Uint8Array; response: Record<string, unknown> }[];
}

/** One plan's cty values: those the provider reads (msgpack) and those it writes. */
export interface MsgpackPlan {
  readonly type: CtyType;
  readonly reads: readonly Uint8Array[];
  readonly writes: readonly Value[];
}

/** The provider's protobuf work for one plan: decode every request, encode every answer. */
export function runProtoPlan(codec: ProtoCodec, plan: ProtoPlan): number {
  let bytes = 0;
  for (const { method, request, response } of plan.rpcs) {
    codec.decode(method, request);
    bytes += codec.encodeFramed(method, response).length;
  }
  return bytes;
}

/** The provider's cty msgpack work for one plan: read every value it is sent, write every answer. */
export function runMsgpackPlan(codec: MsgpackCodec, plan: MsgpackPlan): number {
  let n = 0;
  for (const msgpack of plan.reads) if (codec.decode(msgpack, plan.type) !== null) n++;
  for (const value of plan.writes) n += codec.encode(value, plan.type).length;
  return n;
}
