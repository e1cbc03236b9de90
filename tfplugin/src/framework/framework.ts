import type { Value } from '../values/values.js';
import type { Diagnostic } from './diagnostics.js';
import type { SchemaSpec } from './schema.js';

/** An object value of a resource or data source (attribute name -> value). */
export type ObjectValue = { [name: string]: Value };

export interface ClientCapabilities {
  writeOnlyAttributesAllowed: boolean;
}

export type AttributePath = readonly (string | number)[];

export interface PlanRequest {
  prior: ObjectValue | null;
  /** Core's proposed new state, with the framework's defaults applied (computed-and-unset: unknown on create). */
  planned: ObjectValue;
  config: ObjectValue;
  priorPrivate: Buffer;
}

export interface PlanResult {
  planned: ObjectValue;
  requiresReplace?: AttributePath[];
  plannedPrivate?: Buffer;
  diagnostics?: Diagnostic[];
}

export interface ApplyResult {
  state: ObjectValue | null;
  private?: Buffer;
  diagnostics?: Diagnostic[];
}

/**
 * A managed resource. The methods come in a fixed order (metadata, schema, configure, validate,
 * plan, create, read, update, delete, import); the protocol server turns RPCs into these calls.
 */
export interface Resource<Client> {
  readonly typeName: string;
  readonly schema: SchemaSpec;
  configure(client: Client): void;
  validate(config: ObjectValue, capabilities: ClientCapabilities): Diagnostic[];
  plan(request: PlanRequest): Promise<PlanResult>;
  create(planned: ObjectValue, config: ObjectValue): Promise<ApplyResult>;
  read(current: ObjectValue, privateData: Buffer): Promise<ApplyResult>;
  update(
    prior: ObjectValue,
    planned: ObjectValue,
    config: ObjectValue,
    plannedPrivate: Buffer,
  ): Promise<ApplyResult>;
  delete(prior: ObjectValue, privateData: Buffer): Promise<{ diagnostics?: Diagnostic[] }>;
  importState(id: string): Promise<ApplyResult>;
  /** Told of each state tofu upgrades once the provider is configured: tofu refreshes it next. */
  upgraded?(state: ObjectValue): void;
}

export interface DataSource<Client> {
  readonly typeName: string;
  readonly schema: SchemaSpec;
  configure(client: Client): void;
  validate(config: ObjectValue): Diagnostic[];
  read(config: ObjectValue): Promise<{ state: ObjectValue | null; diagnostics?: Diagnostic[] }>;
}

export interface Provider<Client> {
  /**
   * The provider's source address without the host (`namespace/type`, e.g. `hashicorp/null`): the
   * texts a user may see (run by hand, an internal error) name the provider by it. The type part
   * is also the prefix of its resource types.
   */
  readonly address: string;
  readonly schema: SchemaSpec;
  readonly resources: readonly Resource<Client>[];
  readonly dataSources: readonly DataSource<Client>[];
  validate(config: ObjectValue): Diagnostic[];
  configure(
    config: ObjectValue,
    terraformVersion: string,
  ): Promise<{ client?: Client; diagnostics: Diagnostic[] }>;
}
