import { type Field, type MessageType, message } from './protobuf.js';

/**
 * The messages of Terraform plugin protocol 6 that this provider serves, plus go-plugin's and
 * gRPC health's, written for this repository from the published protocol: the field numbers are
 * the protocol's facts; fields we never read or write are left out (decoders skip unknown
 * fields). Names are the camelCase forms of the protocol's field names.
 */
const f = (name: string, no: number, type: Field['type'], repeated = false): Field => ({
  name,
  no,
  type,
  repeated,
});

export const DynamicValue = message('DynamicValue', [f('msgpack', 1, 'bytes'), f('json', 2, 'bytes')]);

export const AttributePathStep = message('AttributePath.Step', [
  f('attributeName', 1, 'string'),
  f('elementKeyString', 2, 'string'),
  f('elementKeyInt', 3, 'int64'),
]);
export const AttributePath = message('AttributePath', [f('steps', 1, AttributePathStep, true)]);

export const Diagnostic = message('Diagnostic', [
  f('severity', 1, 'enum'),
  f('summary', 2, 'string'),
  f('detail', 3, 'string'),
  f('attribute', 4, AttributePath),
]);
const diagnostics = (no: number) => f('diagnostics', no, Diagnostic, true);

export const RawState = message('RawState', [
  f('json', 1, 'bytes'),
  f('flatmap', 2, { map: ['string', 'string'] }),
]);

const SchemaAttribute = message('Schema.Attribute', [
  f('name', 1, 'string'),
  f('type', 2, 'bytes'),
  f('description', 3, 'string'),
  f('required', 4, 'bool'),
  f('optional', 5, 'bool'),
  f('computed', 6, 'bool'),
  f('sensitive', 7, 'bool'),
  f('descriptionKind', 8, 'enum'),
  f('deprecated', 9, 'bool'),
  f('writeOnly', 11, 'bool'),
]);
// Block and NestedBlock refer to each other; the list is filled in below.
const blockFields: Field[] = [];
const SchemaBlock: MessageType = message('Schema.Block', blockFields);
const SchemaNestedBlock = message('Schema.NestedBlock', [
  f('typeName', 1, 'string'),
  f('block', 2, SchemaBlock),
  f('nesting', 3, 'enum'),
  f('minItems', 4, 'int64'),
  f('maxItems', 5, 'int64'),
]);
blockFields.push(
  f('version', 1, 'int64'),
  f('attributes', 2, SchemaAttribute, true),
  f('blockTypes', 3, SchemaNestedBlock, true),
  f('description', 4, 'string'),
  f('descriptionKind', 5, 'enum'),
  f('deprecated', 6, 'bool'),
);
export const Schema = message('Schema', [f('version', 1, 'int64'), f('block', 2, SchemaBlock)]);

const ServerCapabilities = message('ServerCapabilities', [
  f('planDestroy', 1, 'bool'),
  f('getProviderSchemaOptional', 2, 'bool'),
  f('moveResourceState', 3, 'bool'),
]);
const ClientCapabilities = message('ClientCapabilities', [
  f('deferralAllowed', 1, 'bool'),
  f('writeOnlyAttributesAllowed', 2, 'bool'),
]);
const TypeName = message('TypeName', [f('typeName', 1, 'string')]);
const Empty = message('Empty', []);

/** One RPC: its path and request/response messages. */
export interface Method {
  readonly path: string;
  readonly request: MessageType;
  readonly response: MessageType;
}
const rpc = (
  service: string,
  name: string,
  request: MessageType,
  response: MessageType,
): [string, Method] => [name, { path: `/${service}/${name}`, request, response }];
const provider = (name: string, request: readonly Field[], response: readonly Field[]) =>
  rpc('tfplugin6.Provider', name, message(`${name}.Request`, request), message(`${name}.Response`, response));

export const PROVIDER_METHODS = new Map<string, Method>([
  provider(
    'GetMetadata',
    [],
    [
      f('serverCapabilities', 1, ServerCapabilities),
      diagnostics(2),
      f('dataSources', 3, TypeName, true),
      f('resources', 4, TypeName, true),
    ],
  ),
  provider(
    'GetProviderSchema',
    [],
    [
      f('provider', 1, Schema),
      f('resourceSchemas', 2, { map: ['string', Schema] }),
      f('dataSourceSchemas', 3, { map: ['string', Schema] }),
      diagnostics(4),
      f('providerMeta', 5, Schema),
      f('serverCapabilities', 6, ServerCapabilities),
    ],
  ),
  provider('ValidateProviderConfig', [f('config', 1, DynamicValue)], [diagnostics(2)]),
  provider(
    'ValidateResourceConfig',
    [
      f('typeName', 1, 'string'),
      f('config', 2, DynamicValue),
      f('clientCapabilities', 3, ClientCapabilities),
    ],
    [diagnostics(1)],
  ),
  provider(
    'ValidateDataResourceConfig',
    [f('typeName', 1, 'string'), f('config', 2, DynamicValue)],
    [diagnostics(1)],
  ),
  provider(
    'UpgradeResourceState',
    [f('typeName', 1, 'string'), f('version', 2, 'int64'), f('rawState', 3, RawState)],
    [f('upgradedState', 1, DynamicValue), diagnostics(2)],
  ),
  provider(
    'ConfigureProvider',
    [
      f('terraformVersion', 1, 'string'),
      f('config', 2, DynamicValue),
      f('clientCapabilities', 3, ClientCapabilities),
    ],
    [diagnostics(1)],
  ),
  provider(
    'ReadResource',
    [
      f('typeName', 1, 'string'),
      f('currentState', 2, DynamicValue),
      f('private', 3, 'bytes'),
      f('providerMeta', 4, DynamicValue),
      f('clientCapabilities', 5, ClientCapabilities),
    ],
    [f('newState', 1, DynamicValue), diagnostics(2), f('private', 3, 'bytes')],
  ),
  provider(
    'PlanResourceChange',
    [
      f('typeName', 1, 'string'),
      f('priorState', 2, DynamicValue),
      f('proposedNewState', 3, DynamicValue),
      f('config', 4, DynamicValue),
      f('priorPrivate', 5, 'bytes'),
      f('providerMeta', 6, DynamicValue),
      f('clientCapabilities', 7, ClientCapabilities),
    ],
    [
      f('plannedState', 1, DynamicValue),
      f('requiresReplace', 2, AttributePath, true),
      f('plannedPrivate', 3, 'bytes'),
      diagnostics(4),
      f('legacyTypeSystem', 5, 'bool'),
    ],
  ),
  provider(
    'ApplyResourceChange',
    [
      f('typeName', 1, 'string'),
      f('priorState', 2, DynamicValue),
      f('plannedState', 3, DynamicValue),
      f('config', 4, DynamicValue),
      f('plannedPrivate', 5, 'bytes'),
      f('providerMeta', 6, DynamicValue),
    ],
    [
      f('newState', 1, DynamicValue),
      f('private', 2, 'bytes'),
      diagnostics(3),
      f('legacyTypeSystem', 4, 'bool'),
    ],
  ),
  provider(
    'ImportResourceState',
    [f('typeName', 1, 'string'), f('id', 2, 'string'), f('clientCapabilities', 3, ClientCapabilities)],
    [
      f(
        'importedResources',
        1,
        message('ImportResourceState.ImportedResource', [
          f('typeName', 1, 'string'),
          f('state', 2, DynamicValue),
          f('private', 3, 'bytes'),
        ]),
        true,
      ),
      diagnostics(2),
    ],
  ),
  provider(
    'ReadDataSource',
    [
      f('typeName', 1, 'string'),
      f('config', 2, DynamicValue),
      f('providerMeta', 3, DynamicValue),
      f('clientCapabilities', 4, ClientCapabilities),
    ],
    [f('state', 1, DynamicValue), diagnostics(2)],
  ),
  provider('StopProvider', [], [f('Error', 1, 'string')]),
]);

/** gRPC health checking: go-plugin's client asks for the service "plugin". */
export const HEALTH_CHECK = rpc(
  'grpc.health.v1.Health',
  'Check',
  message('HealthCheckRequest', [f('service', 1, 'string')]),
  message('HealthCheckResponse', [f('status', 1, 'enum')]),
)[1];

/** go-plugin's controller: the client asks the plugin to exit. */
export const CONTROLLER_SHUTDOWN = rpc('plugin.GRPCController', 'Shutdown', Empty, Empty)[1];

/** go-plugin's broker stream: we open no side channels, but keep the stream the client opens. */
export const BROKER_START_STREAM = '/plugin.GRPCBroker/StartStream';
