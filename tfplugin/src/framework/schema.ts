import type { CtyType } from '../values/values.js';

/**
 * Schemas as documented data: every attribute says what it is and its default. From one
 * definition we derive the protocol's schema message and the value type for the wire.
 */
export interface AttributeSpec {
  readonly type: CtyType;
  readonly description: string;
  readonly required?: boolean;
  readonly optional?: boolean;
  readonly computed?: boolean;
  readonly sensitive?: boolean;
  /** Terraform 1.11+/OpenTofu 1.11+: the value is never stored in state or plan. */
  readonly writeOnly?: boolean;
}

export interface NestedBlockSpec {
  readonly nesting: 'single' | 'list';
  readonly block: BlockSpec;
  readonly maxItems?: number;
}

export interface BlockSpec {
  readonly description: string;
  readonly attributes: Readonly<Record<string, AttributeSpec>>;
  readonly blocks?: Readonly<Record<string, NestedBlockSpec>>;
}

export interface SchemaSpec {
  readonly version: number;
  readonly block: BlockSpec;
}

/** The object type of a block's value: attributes plus nested blocks. */
export function blockType(block: BlockSpec): CtyType {
  const attrs: Record<string, CtyType> = {};
  for (const [name, a] of Object.entries(block.attributes)) attrs[name] = a.type;
  for (const [name, b] of Object.entries(block.blocks ?? {})) {
    const inner = blockType(b.block);
    attrs[name] = b.nesting === 'single' ? inner : ['list', inner];
  }
  return ['object', attrs];
}

const NESTING = { single: 1, list: 2 } as const;

interface ProtoBlock {
  version: number;
  description: string;
  descriptionKind: number;
  attributes: Record<string, unknown>[];
  blockTypes: { typeName: string; block: ProtoBlock; nesting: number; minItems: number; maxItems: number }[];
}

function protoBlock(block: BlockSpec): ProtoBlock {
  return {
    version: 0,
    description: block.description,
    descriptionKind: 1,
    attributes: Object.entries(block.attributes).map(([name, a]) => ({
      name,
      type: Buffer.from(JSON.stringify(a.type)),
      description: a.description,
      descriptionKind: 1,
      required: a.required ?? false,
      optional: a.optional ?? false,
      computed: a.computed ?? false,
      sensitive: a.sensitive ?? false,
      writeOnly: a.writeOnly ?? false,
    })),
    blockTypes: Object.entries(block.blocks ?? {}).map(([typeName, b]): ProtoBlock['blockTypes'][number] => ({
      typeName,
      block: protoBlock(b.block),
      nesting: NESTING[b.nesting],
      minItems: 0,
      maxItems: b.maxItems ?? 0,
    })),
  };
}

export function toProtoSchema(spec: SchemaSpec) {
  return { version: spec.version, block: protoBlock(spec.block) };
}

/** Names of the write-only attributes, anywhere in the block (they must be null in state). */
const writeOnlyByBlock = new WeakMap<BlockSpec, readonly string[]>();

/** The block's write-only attribute names (asked for on every state the provider returns). */
export function writeOnlyAttributes(block: BlockSpec): readonly string[] {
  let names = writeOnlyByBlock.get(block);
  if (!names) {
    names = Object.entries(block.attributes)
      .filter(([, a]) => a.writeOnly)
      .map(([n]) => n);
    writeOnlyByBlock.set(block, names);
  }
  return names;
}
