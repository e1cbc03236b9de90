import { MODEL_PATTERN, MODEL_RULE } from '@rigbox/catalog';
import { z } from 'zod';
import { AI_PROVIDER_IDS } from './providers.js';

/** The one source of truth for the AI-config shapes: validation, types and the OpenAPI document. */

export const Mode = z
  .enum(['managed', 'byok'])
  .describe('`managed`: Rigbox pays and counts credits. `byok`: your own provider key.');
export const AiProvider = z.enum(AI_PROVIDER_IDS).describe('The AI provider.');
export const Model = z
  .string()
  .min(1)
  .max(128)
  .regex(MODEL_PATTERN, `model ${MODEL_RULE}`)
  .describe('Model id, e.g. `gpt-4o` or `google/gemini-2.5-pro`; null for the provider default.');

export const AiConfigInput = z
  .strictObject({
    mode: Mode,
    provider: AiProvider,
    api_key: z
      .string()
      .nullable()
      .optional()
      .describe(
        'Write-only. A string stores the key (byok only); null clears it; absent keeps the stored key (unless the provider changes).',
      ),
    model: Model.nullable()
      .optional()
      .describe('Absent keeps the current model when the provider is unchanged; null clears it.'),
  })
  .describe('An AI config. The key is write-only: no response ever contains it.');
export type AiConfigInput = z.infer<typeof AiConfigInput>;

export const AiConfigView = z
  .object({
    workspace_id: z.string().nullable().describe('The workspace, or null for user defaults.'),
    mode: Mode,
    provider: AiProvider,
    model: z.string().nullable(),
    api_key_set: z
      .boolean()
      .describe('Whether a usable key is stored (false when the stored one cannot be decrypted).'),
    api_key_state: z
      .enum(['unset', 'set', 'unreadable'])
      .describe(
        '`unreadable`: a key is stored but does not decrypt (altered, moved from another record, or sealed by a master key that is gone); it is never used; set the key again.',
      ),
    api_key_fingerprint: z
      .string()
      .nullable()
      .describe(
        'Keyed one-way hash of the stored key: stable for the same key, reveals nothing of it. Null when no usable key is stored.',
      ),
    api_key_updated_at: z.string().nullable(),
    revision: z.number().int().describe('Increments on every change; also sent as the ETag.'),
    updated_at: z.string().nullable(),
  })
  .describe('An AI config as the API shows it: never the key.');
export type AiConfigView = z.infer<typeof AiConfigView>;

export const WorkspaceName = z
  .string()
  .trim()
  .min(1)
  .max(100)
  // The control characters (Unicode Cc) spelled as ranges: the OpenAPI document carries this pattern,
  // and `\p{Cc}` is not ECMA-262 without the `u` flag (most validators and generators read it wrong).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  .regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, 'name may not contain control characters');

export const CreateWorkspaceInput = z.strictObject({
  name: WorkspaceName,
  ai_config: AiConfigInput.optional().describe("Overrides the caller's AI defaults for this workspace."),
});

export const WorkspaceView = z.object({
  id: z.string(),
  name: z.string(),
  created_at: z.string(),
  ai_config: AiConfigView,
});
export type WorkspaceView = z.infer<typeof WorkspaceView>;

export const AuditEventView = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  changes: z.record(z.string(), z.tuple([z.unknown(), z.unknown()])),
  key_event: z.enum(['set', 'rotated', 'cleared']).nullable(),
  revision: z.number().int().nullable(),
});

export const ErrorBody = z.object({
  statusCode: z.number().int(),
  error: z.string(),
  code: z.string(),
  message: z.string(),
  field: z.string().optional(),
  rule: z
    .string()
    .optional()
    .describe('With code policy_violation: the BYOK policy rule the request breaks.'),
  issues: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});
