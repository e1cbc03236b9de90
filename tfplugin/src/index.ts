/**
 * @rigbox/tfplugin: a Terraform plugin SDK for Node, speaking plugin protocol 6 (tfplugin6 over
 * gRPC, with go-plugin's handshake and AutoMTLS) so that real `terraform` and `tofu` drive a
 * provider written in TypeScript. Layered as terraform-plugin-go keeps it:
 *
 *   server/     serve(): the go-plugin handshake and the RPC dispatch; imports all below
 *   framework/  Resource, DataSource, Provider, schema specs, diagnostics (what a provider
 *               writes); imports values only
 *   wire/       HTTP/2 + HPACK, gRPC framing, the AutoMTLS certificate; imports proto
 *   proto/      the tfplugin6 messages (proto/tfplugin6.proto) and their protobuf codec
 *   values/     cty values as msgpack, guided by the schema's types
 *
 * It knows nothing of any particular provider. This entry is the public API; `@rigbox/tfplugin/proto`
 * exposes the message codec for tests that speak the protocol directly.
 */

export { type Diagnostic, error, hasError, warning } from './framework/diagnostics.js';
export type {
  ApplyResult,
  AttributePath,
  ClientCapabilities,
  DataSource,
  ObjectValue,
  PlanRequest,
  PlanResult,
  Provider,
  Resource,
} from './framework/framework.js';
export {
  type AttributeSpec,
  type BlockSpec,
  blockType,
  type NestedBlockSpec,
  type SchemaSpec,
} from './framework/schema.js';
export { type Logger, providerSchemaAnswer, serve } from './server/server.js';
export {
  type CtyType,
  containsUnknown,
  decodeDynamic,
  encodeDynamic,
  isUnknown,
  UNKNOWN,
  type Unknown,
  type Value,
  ValueError,
} from './values/values.js';
export { certificateDer, createServerCertificate, type ServerCertificate } from './wire/certificate.js';
