import type { FastifySerializerCompiler } from 'fastify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

/** Writes one value as JSON, or throws when it is not of the declared shape. */
type Emit = (value: unknown, path: string) => string;

/** A response value that does not match its declared schema: a bug, answered as a 500. */
export class ResponseShapeError extends Error {
  constructor(path: string) {
    super(`response field ${path || '(root)'} does not match its schema`);
    this.name = 'ResponseShapeError';
  }
}

const primitive =
  (type: 'string' | 'number' | 'boolean'): Emit =>
  (value, path) => {
    if (typeof value !== type || (type === 'number' && !Number.isFinite(value))) {
      throw new ResponseShapeError(path);
    }
    return JSON.stringify(value);
  };

/**
 * Compiles a zod response schema into a writer that emits only the declared fields, checking each
 * value's type on the way; undefined for schema kinds it does not know (the route then keeps the
 * zod serializer). Like zod's own output parsing it never lets an undeclared field (a key
 * envelope, say) reach the wire, at a fraction of the cost on the routes tofu calls per resource.
 */
function compile(schema: z.ZodType): Emit | undefined {
  if (schema instanceof z.ZodString) return primitive('string');
  if (schema instanceof z.ZodNumber) return primitive('number');
  if (schema instanceof z.ZodBoolean) return primitive('boolean');
  if (schema instanceof z.ZodEnum || schema instanceof z.ZodLiteral) {
    const allowed = new Set<unknown>(schema instanceof z.ZodEnum ? schema.options : schema.values);
    return (value, path) => {
      if (!allowed.has(value)) throw new ResponseShapeError(path);
      return JSON.stringify(value);
    };
  }
  if (schema instanceof z.ZodNullable) {
    const inner = compile(schema.unwrap() as z.ZodType);
    return inner && ((value, path) => (value === null ? 'null' : inner(value, path)));
  }
  if (schema instanceof z.ZodArray) {
    const element = compile(schema.element as z.ZodType);
    if (!element) return undefined;
    return (value, path) => {
      if (!Array.isArray(value)) throw new ResponseShapeError(path);
      return `[${value.map((v, i) => element(v, `${path}[${i}]`)).join(',')}]`;
    };
  }
  if (schema instanceof z.ZodObject) {
    const fields: { key: string; prefix: string; emit: Emit; optional: boolean }[] = [];
    for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
      const optional = field instanceof z.ZodOptional;
      const emit = compile(optional ? (field.unwrap() as z.ZodType) : field);
      if (!emit) return undefined;
      fields.push({ key, prefix: `${JSON.stringify(key)}:`, emit, optional });
    }
    return (value, path) => {
      if (typeof value !== 'object' || value === null) throw new ResponseShapeError(path);
      const record = value as Record<string, unknown>;
      let out = '';
      for (const f of fields) {
        const v = record[f.key];
        if (v === undefined) {
          if (f.optional) continue;
          throw new ResponseShapeError(path ? `${path}.${f.key}` : f.key);
        }
        out += `${out ? ',' : ''}${f.prefix}${f.emit(v, path ? `${path}.${f.key}` : f.key)}`;
      }
      return `{${out}}`;
    };
  }
  return undefined;
}

/** Fastify serializer compiler: the compiled writer where the schema allows, zod's otherwise. */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = (route) => {
  const emit = compile(route.schema);
  if (!emit) return zodSerializerCompiler(route as never);
  return (data) => emit(data, '');
};
