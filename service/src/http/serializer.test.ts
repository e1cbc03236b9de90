import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AiConfigView, ErrorBody, WorkspaceView } from '../ai-config/schemas.js';
import { ResponseShapeError, serializerCompiler } from './serializer.js';

const writerFor = (schema: z.ZodType) =>
  serializerCompiler({ schema, method: 'GET', url: '/x', httpStatus: '200' } as never);

const view = {
  workspace_id: 'ws_1',
  mode: 'byok',
  provider: 'openai',
  model: null,
  api_key_set: true,
  api_key_state: 'set',
  api_key_fingerprint: 'hmac-sha256:abc',
  api_key_updated_at: '2026-11-26T00:00:00.000Z',
  revision: 3,
  updated_at: '2026-11-26T00:00:00.000Z',
};

describe('compiled response serializer', () => {
  it('writes what zod would write for the config view, workspace view and error body', () => {
    const cases: [z.ZodType, unknown][] = [
      [AiConfigView, view],
      [WorkspaceView, { id: 'ws_1', name: 'a "quoted" name', created_at: 'now', ai_config: view }],
      [
        ErrorBody,
        {
          statusCode: 400,
          error: 'Bad Request',
          code: 'invalid_request',
          message: 'm',
          issues: [{ field: 'f', message: 'x' }],
        },
      ],
      [ErrorBody, { statusCode: 404, error: 'Not Found', code: 'not_found', message: 'gone', field: 'id' }],
    ];
    for (const [schema, value] of cases) {
      expect(JSON.parse(writerFor(schema)(value) as string)).toEqual(z.encode(schema, value as never));
    }
  });

  it('never lets an undeclared field through (a key envelope returned by mistake)', () => {
    const out = writerFor(AiConfigView)({
      ...view,
      key: { ciphertext: 'c2VjcmV0', wrappedDek: 'x' },
    }) as string;
    expect(out).not.toContain('ciphertext');
    expect(JSON.parse(out)).toEqual(view);
  });

  it('refuses a value of the wrong type or enum, naming the field', () => {
    expect(() => writerFor(AiConfigView)({ ...view, model: { secret: 'sk-x' } })).toThrow(ResponseShapeError);
    expect(() => writerFor(AiConfigView)({ ...view, mode: 'other' })).toThrow(/field mode/);
    expect(() => writerFor(AiConfigView)({ ...view, revision: Number.NaN })).toThrow(/field revision/);
    const { revision: _, ...missing } = view;
    expect(() => writerFor(AiConfigView)(missing)).toThrow(/field revision/);
    expect(() => writerFor(WorkspaceView)({ id: 'w', name: 'n', created_at: 'c', ai_config: 'x' })).toThrow(
      /field ai_config/,
    );
  });

  it('falls back to zod for schema kinds it does not compile', () => {
    const Changes = z.object({ changes: z.record(z.string(), z.tuple([z.unknown(), z.unknown()])) });
    const value = { changes: { mode: ['managed', 'byok'] } };
    expect(JSON.parse(writerFor(Changes)(value) as string)).toEqual(value);
  });
});
