/**
 * Why a key source could not be read. Each kind maps to one thing the user can do about it, so the
 * provider can turn it into a diagnostic without parsing messages.
 */
export type KeySourceErrorKind =
  | 'not_found'
  | 'field_missing'
  | 'version_destroyed'
  | 'permission_denied'
  | 'sealed'
  | 'unreachable'
  | 'throttled'
  | 'timeout'
  | 'invalid_reference'
  | 'auth_failed'
  | 'unknown';

/**
 * A failure to read a key source. The message and `reference` name the source (mount, path, field,
 * parameter name, address) and the HTTP status or AWS error name, never a key, a token or a
 * response body.
 */
export class KeySourceError extends Error {
  override readonly name = 'KeySourceError';
  readonly kind: KeySourceErrorKind;
  /** The printable reference, e.g. `vault://secret/app/openai#api_key` or `ssm:/rigbox/openai`. */
  readonly reference: string;

  constructor(kind: KeySourceErrorKind, reference: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.reference = reference;
  }
}

/** Socket error codes that mean the source could not be reached at all (both sources map them to 'unreachable'). */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
